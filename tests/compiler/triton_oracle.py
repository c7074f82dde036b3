"""Runs the differential test's kernels through Triton's interpreter, in a process of its own
(``TRITON_INTERPRET=1`` must be set before Triton is imported, whatever the test process did).

    python triton_oracle.py kernels.py cases.pt results.pt     # one batch
    python triton_oracle.py --serve                            # many: one request per line

``cases.pt`` holds, per kernel name, its launch arguments, constexprs and grid; ``results.pt``
gets, per name, the output tensors after the launch or the text of the error Triton raised.
With ``--serve`` the process reads lines from stdin, each a folder holding ``kernels.py`` and
``cases.pt``, and answers each with a line ``done`` once the folder's ``results.pt`` is
written, so the test pays for starting Python and importing Triton once, not once per kernel.
"""

import importlib.util
import os
import sys

os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402


def main(module_path: str, cases_path: str, results_path: str) -> None:
    name = f"fuzz_module_{abs(hash(module_path))}"  # one module per file: a kernel name repeats
    spec = importlib.util.spec_from_file_location(name, module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = torch.load(cases_path)
    results = {}
    for name, (inputs, constexprs, grid, outputs) in cases.items():
        args = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()}
        try:
            getattr(module, name)[grid](**args, **constexprs)
            results[name] = [args[o] for o in outputs]
        except Exception as e:  # Triton rejects the kernel: recorded, not fatal
            results[name] = f"{type(e).__name__}: {e}"[:500]
    torch.save(results, results_path)


def serve() -> None:
    for line in sys.stdin:
        folder = line.rstrip("\n")
        main(f"{folder}/kernels.py", f"{folder}/cases.pt", f"{folder}/results.pt")
        print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main(*sys.argv[1:4])
