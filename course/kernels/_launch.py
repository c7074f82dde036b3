"""Launching a compiled kernel again without Triton's per-call bookkeeping.

Each ``kernel[grid](*args)`` call runs Python in Triton before the GPU gets any work: it binds the
arguments to the signature, works out how each one specialises the kernel (dtype, whether a
pointer or an integer is a multiple of 16, whether an integer is 1), hashes that into a cache key
and looks the compiled kernel up. ``triton.autotune`` adds its own lookup on top. For a large
matmul the tens of microseconds this costs are hidden behind the GPU's work; for a small one they
*are* the run time.

A wrapper knows more than Triton about its own arguments: if its key holds every value that
decides the specialisation (the shape, the strides, the dtype, the pointers' 16-byte alignment,
the configuration), then one compiled kernel and one grid serve every later call with the same
key. :class:`LaunchCache` keeps, per key, the compiled kernel's launcher bound to its grid and to
the compile-time constants, so a repeated call costs one dictionary lookup and the driver launch.

The first call of a key still goes through ``kernel[grid](...)``, which compiles (or finds) the
kernel and returns it; :meth:`LaunchCache.remember` binds that. On the CPU (Triton's interpreter)
there is nothing compiled to keep, and wrappers skip the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch


def aligned(t: torch.Tensor) -> bool:
    """Whether the tensor's data starts on a 16-byte boundary: Triton specialises pointers on it."""
    return t.data_ptr() % 16 == 0


def _stream_getter():
    """Triton's ``get_current_stream`` and the current device, as its launch path uses them."""
    from triton.runtime.driver import driver

    return driver.active.get_current_stream, driver.active.get_current_device()


def _unhooked(hook) -> bool:
    """No launch hook: none at all, or an empty chain of them (Triton 3.7's default)."""
    return hook is None or not getattr(hook, "calls", True)


class LaunchCache:
    """Bound launchers of compiled kernels, one per key (at most ``max_entries``; then cleared)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._launchers: dict[Hashable, Callable[..., None]] = {}
        self.max_entries = max_entries
        self.enabled = True  # switched off if binding ever fails (an unexpected Triton version)

    def get(self, key: Hashable) -> Callable[..., None] | None:
        """The launcher for ``key``; call it with the kernel's run-time arguments only."""
        return self._launchers.get(key)

    def remember(self, key: Hashable, compiled, grid: tuple[int, ...], fn, constants: dict) -> None:
        """Bind ``compiled`` (what ``fn[grid](...)`` returned) to ``grid`` and ``constants``.

        ``constants`` maps each compile-time argument of ``fn`` to the value it was compiled with;
        arguments left out take the default of ``fn``'s signature. Triton's launcher takes every
        argument in signature order (it skips the compile-time ones itself), so the bound
        launcher appends them after the run-time arguments, in that order.
        """
        if not self.enabled or compiled is None:
            return
        try:
            names = list(fn.arg_names)
            first_constant = min(i for i, p in enumerate(fn.params) if p.is_constexpr)
            tail = []
            for param in fn.params[first_constant:]:
                if not param.is_constexpr:  # run-time arguments after constants: not this form
                    self.enabled = False
                    return
                name = names[param.num]
                tail.append(constants[name] if name in constants else param.default)
            grid3 = tuple(grid) + (1,) * (3 - len(grid))
            runner = compiled[grid3]  # Triton's own way to launch a compiled kernel again
            run, function, packed = compiled.run, compiled.function, compiled.packed_metadata
            from triton import knobs

            stream_of, device = _stream_getter()
        except Exception:  # noqa: BLE001 - a Triton without these attributes: keep the slow path
            self.enabled = False
            return
        tail = tuple(tail)
        hooks = knobs.runtime
        direct = [True]

        def launch(*args) -> None:
            # What the runner does, less its Python: the launcher itself, on the current stream.
            # With a launch hook installed (a profiler), the runner's full path runs instead.
            unhooked = _unhooked(hooks.launch_enter_hook) and _unhooked(hooks.launch_exit_hook)
            if direct[0] and unhooked:
                try:
                    run(*grid3, stream_of(device), function, packed, None, None, None, *args, *tail)
                    return
                except TypeError:  # another launcher signature: its arguments were refused
                    direct[0] = False  # before anything launched; use the runner from now on
            runner(*args, *tail)

        if len(self._launchers) >= self.max_entries:
            self._launchers.clear()
        self._launchers[key] = launch

    def launch(self, key: Hashable, fn, grid: tuple[int, ...], args: tuple, constants: dict,
               **launch_options) -> None:
        """Launch ``fn[grid](*args, **constants, **launch_options)``; bound and fast after the
        first call of ``key``. The key must decide everything Triton specialises on (see above)."""
        launcher = self._launchers.get(key)
        if launcher is not None:
            launcher(*args)
            return
        compiled = fn[grid](*args, **constants, **launch_options)
        self.remember(key, compiled, grid, fn, constants)

    def clear(self) -> None:
        self._launchers.clear()

    def __len__(self) -> int:
        return len(self._launchers)
