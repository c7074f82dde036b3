"""A planted bug for a memory checker: vector addition with the mask forgotten.

``add_nomask`` is lesson 1's kernel without ``mask=offsets < n_elements``. Launched on 100
elements with a block of 128, its one program reads and writes 28 elements past the end of each
tensor. On a GPU that goes unnoticed: no error, and the result is even right, because the
stray accesses land in memory nobody checks. ``compute-sanitizer --tool memcheck`` finds it,
provided every tensor is its own allocation (``PYTORCH_NO_CUDA_MEMORY_CACHING=1``: PyTorch's
caching allocator otherwise hands out slices of larger segments, and the stray accesses stay
inside them).

Run it as ``compute-sanitizer --tool memcheck python -m course.debugging.planted_bug`` with that
variable set (``course.debugging.run_memcheck`` does). It needs a CUDA GPU.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def add_nomask(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    offsets = tl.program_id(axis=0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    x = tl.load(x_ptr + offsets)  # the bug: no mask, so lanes past n_elements read too
    y = tl.load(y_ptr + offsets)
    tl.store(out_ptr + offsets, x + y)  # ... and write


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("the planted bug runs on a CUDA GPU")
    n = 100
    x, y = torch.randn(n, device="cuda"), torch.randn(n, device="cuda")
    out = torch.empty(n, device="cuda")
    add_nomask[(triton.cdiv(n, 128),)](x, y, out, n, BLOCK_SIZE=128)
    torch.cuda.synchronize()
    right = torch.allclose(out, x + y)
    print(f"planted bug ran: n = {n}, BLOCK_SIZE = 128, result {'right' if right else 'wrong'}")


if __name__ == "__main__":
    main()
