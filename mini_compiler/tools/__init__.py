"""Tools for learners, above the compile path: compile a kernel for the GPU and look at every
stage and layout (``gpu.py``), and the checks of the GPU exercises (``gpu_exercises.py``).
``mini_compiler.backends.gpu`` offers the same names, for the lessons that import them there."""
