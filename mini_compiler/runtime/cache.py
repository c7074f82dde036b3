"""The in-memory compile cache: one entry per (kernel, specialisation key, options).

Every JITFunction registers its cache here so that :func:`clear_all` can empty them all, which
:func:`mini_compiler.hooks.override` does when a learner installs a rule (compiled code made with
the old rule must not be reused).
"""

from __future__ import annotations

import weakref

_ALL_CACHES: weakref.WeakSet[KernelCache] = weakref.WeakSet()


class KernelCache(dict):
    """A dict from specialisation key to compiled kernel, registered for clear_all()."""

    def __init__(self):
        super().__init__()
        _ALL_CACHES.add(self)

    def __hash__(self) -> int:  # registered in a WeakSet by identity
        return id(self)


def clear_all() -> None:
    """Forget every compiled kernel (they are recompiled on next launch)."""
    for cache in list(_ALL_CACHES):
        cache.clear()
