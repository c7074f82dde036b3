"""Tile IR: types, ops, a builder, typing rules and a printer. Imports nothing outside ``ir``."""

from .builder import Builder
from .ops import Block, Function, Location, Op, Value
from .printer import print_function
from .types import PointerType, ScalarType, TileType

__all__ = [
    "Block", "Builder", "Function", "Location", "Op", "PointerType", "ScalarType", "TileType",
    "Value", "print_function",
]
