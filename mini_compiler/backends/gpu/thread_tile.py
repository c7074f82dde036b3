"""What one thread holds of a tile (:class:`ThreadTile`), and two small size helpers."""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...passes.gpu.layouts import Layout, elements_per_thread


@dataclass
class ThreadTile:
    """The part of a tile one thread holds: ``values`` in row-major order over ``counts``
    (elements per thread along each dimension, see ``layouts.elements_per_thread``)."""

    layout: Layout
    shape: tuple[int, ...]
    values: list[ir.Value]

    @property
    def counts(self) -> tuple[int, ...]:
        return elements_per_thread(self.layout, self.shape)


def register_bytes(element) -> int:
    """Bytes an element takes when exchanged through shared memory (bf16 travels as f32)."""
    return 8 if element.is_pointer else (4 if element.name == "bf16" else element.size_bytes)


def bit_index(power_of_two: int) -> int:
    return power_of_two.bit_length() - 1
