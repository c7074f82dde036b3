"""What each ``tl.*`` function means, by family; each module adds ``builtin_<name>`` methods
that the code generator calls for ``tl.<name>(...)``."""
