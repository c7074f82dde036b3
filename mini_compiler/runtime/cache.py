"""The in-memory compile cache: one entry per (kernel, specialisation key, options).

Every JITFunction registers its cache here so that :func:`clear_all` can empty them all, which
:func:`mini_compiler.hooks.override` does when a learner installs a rule (compiled code made with
the old rule must not be reused).
"""

from __future__ import annotations

import weakref

_ALL_CACHES: weakref.WeakSet[KernelCache] = weakref.WeakSet()


class KernelCache(dict):
    """A dict from specialisation key to compiled kernel, registered for clear_all().

    ``fast`` is the launch fast path's table (``runtime/jit.py``): a cheap key of a launch's
    arguments -> the compiled kernel the full specialisation chose for them. It is emptied with
    the cache, so clearing forgets both.
    """

    def __init__(self):
        super().__init__()
        self.fast: dict = {}
        _ALL_CACHES.add(self)

    def clear(self) -> None:
        super().clear()
        self.fast.clear()

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self.fast.clear()

    def __hash__(self) -> int:  # registered in a WeakSet by identity
        return id(self)


def clear_all() -> None:
    """Forget every compiled kernel (they are recompiled on next launch)."""
    for cache in list(_ALL_CACHES):
        cache.clear()
