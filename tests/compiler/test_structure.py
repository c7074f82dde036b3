"""The shape of the package: no import cycle between mini_compiler's modules, and no module much
over 600 lines (a file a learner can read in one sitting)."""

import ast
from pathlib import Path

import mini_compiler
import mini_compiler.language as tl

PACKAGE = Path(mini_compiler.__file__).parent
MAX_LINES = 650


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of the package that ``path`` imports at module level (not inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("mini_compiler"):
                found.add(target)
                for alias in node.names:
                    found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mini_compiler")}
    return found


def test_no_import_cycles():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    # An import of an enclosing package (``from .. import language``) is no edge: Python has
    # started that package's __init__ before any module inside it.
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name
                    and not name.startswith(m + ".")}
             for name, path in modules.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_no_module_is_much_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_reduce_combiners_are_defined_once_in_the_shared_core():
    """Both back ends combine reductions with ``llvm_core.reduce_combine`` (the CPU with its
    fast-math flag); neither builds its own compare-and-select or flagged add for a reduction."""
    root = Path(mini_compiler.__file__).parent / "backends"
    for backend in ("cpu", "gpu"):
        source = (root / backend / "regions.py").read_text()
        assert "llvm_core.reduce_combine(" in source, backend
        assert '"nnan"' not in source and '"reassoc", "nsz"' not in source, backend



@mini_compiler.jit
def row_sums_and_running_sums(x_ptr, sum_ptr, scan_ptr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * BLOCK + cols)
    tl.store(sum_ptr + row, tl.sum(x, axis=0))
    tl.store(scan_ptr + row * BLOCK + cols,
                                 tl.cumsum(x, axis=0))


def test_the_cpu_reduction_is_fast_math_and_the_scan_is_not():
    import torch

    x = torch.randn(8, 32)
    sums, scans = torch.full((8,), float("nan")), torch.full((8, 32), float("nan"))
    row_sums_and_running_sums[(8,)](x, sums, scans, BLOCK=32)
    torch.testing.assert_close(sums, x.double().sum(1).float())
    torch.testing.assert_close(scans, x.double().cumsum(1).float())
    llvm = row_sums_and_running_sums.stages(x, sums, scans, BLOCK=32)["llvm"]
    assert "fadd reassoc nsz nnan ninf float" in llvm  # tl.sum: LLVM may vectorise it
    assert "fadd float" in llvm  # tl.cumsum: each running total is added in order
