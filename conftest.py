"""pytest set-up shared by the unit tests and nbval.

Choose the device before anything imports triton: with no CUDA GPU, Triton must load in interpreter
mode (``TRITON_INTERPRET=1``) and the course uses its small CPU problem sizes.
"""

import course

course.configure()
