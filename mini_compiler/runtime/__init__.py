"""The runtime: specialisation, the compile cache and the ``kernel[grid](...)`` launch
(``jit.py``). The compile path itself is ``mini_compiler/driver.py``."""
