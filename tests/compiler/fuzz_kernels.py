"""A generator of random Triton kernels for the differential test (``test_differential.py``).

``generate(number, rng)`` returns a :class:`FuzzCase`: the source of a ``@triton.jit`` kernel
(and of a helper it calls), the inputs to launch it with and its grid. Every random choice is
drawn from ``rng``: the test passes Hypothesis's random source, so Hypothesis decides the choices,
replays them and shrinks a failing kernel to a small one; ``generate(number)`` alone draws from
``random.Random(number)``, the same case for the same number. Kernels are built from the
constructs learners write, combined at random:

* elementwise expression trees over tiles of several dtypes (f32, f16, f64, i8, u8, i32, i64)
  with arithmetic, comparisons, ``tl.where``, ``tl.maximum``/``minimum``, unary math and
  casts; integer ``//`` and ``%`` only by a divisor that cannot be zero;
* loops over ``range`` with positive and negative, compile-time and runtime steps, carrying a tile;
* a runtime ``if`` on a scalar argument or the program id;
* helper ``@triton.jit`` functions;
* 2-D tiles with ``tl.sum`` / ``tl.max`` / ``tl.min`` along either axis;
* grid-stride loops (``tl.num_programs``) and 2-D grids;
* a load and a store on the same buffer (shift or reverse in place; one program, as the order of
  programs is not defined).

Every result is stored as f64 (exact for every dtype above), so one comparison fits all.

bf16 is left out: Triton 3.7's interpreter, the oracle, computes bf16 wrongly (a bf16 sum or an
f64 -> bf16 conversion comes out as garbage such as 3.9e+36, 0 or NaN). bf16 is checked against
torch in ``test_wrong_code.py`` and on the GPU in ``tests/compiler_gpu``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

FLOAT_DTYPES = ["float32", "float16", "float64"]
INT_DTYPES = ["int32", "int8", "uint8", "int64"]


@dataclass
class FuzzCase:
    seed: int
    name: str
    source: str  # module text: the helper and the kernel
    inputs: dict[str, torch.Tensor | int | float]  # launch arguments by name, in order
    constexprs: dict[str, int]
    grid: tuple[int, ...]
    outputs: list[str]  # names of the tensors the kernel writes
    dtypes: list[str] = field(default_factory=list)

    def tolerance(self) -> tuple[float, float]:
        """(rtol, atol): loose when a half-precision type takes part (operations may round
        in another order), tight otherwise."""
        if "float16" in self.dtypes:
            return 2e-2, 2e-2
        return 2e-5, 2e-5


class ExprBuilder:
    """Emits statements ``t<k> = <expr>`` and tracks whether each name holds floats, integers
    or booleans (its *kind*), so that only well-typed expressions are written."""

    def __init__(self, rng: random.Random, lines: list[str], indent: str = "    "):
        self.rng = rng
        self.lines = lines
        self.indent = indent
        self.count = 0

    def emit(self, expr: str) -> str:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"{self.indent}{name} = {expr}")
        return name

    def expression(self, names: dict[str, str], depth: int) -> tuple[str, str]:
        """A new name holding a random expression of ``names`` (name -> kind); (name, kind)."""
        rng = self.rng
        if depth == 0 or rng.random() < 0.25:
            name = rng.choice(sorted(names))
            return name, names[name]
        a, ka = self.expression(names, depth - 1)
        b, kb = self.expression(names, depth - 1)
        if ka == "b":
            a, ka = self.emit(f"{a}.to(tl.int32)"), "i"
        if kb == "b":
            b, kb = self.emit(f"{b}.to(tl.int32)"), "i"
        floats = "f" in (ka, kb)
        choices = ["+", "-", "*", "max", "min", "where", "cmp", "unary", "cast"]
        choices += ["/", "fmod"] if floats else ["//", "%", "&", "^"]
        op = rng.choice(choices)
        if op in ("+", "-", "*"):
            return self.emit(f"{a} {op} {b}"), "f" if floats else "i"
        if op == "/":
            return self.emit(f"{a} / (tl.abs({b}) + 1.5)"), "f"
        if op == "fmod":
            return self.emit(f"{a} % (tl.abs({b}) + 0.75)"), "f"
        if op in ("//", "%"):
            divisor = self.emit(f"(({b} & 7) + 1).to({a}.dtype)")
            return self.emit(f"{a} {op} {divisor}"), "i"
        if op in ("&", "^"):
            return self.emit(f"{a} {op} {b}"), "i"
        if op in ("max", "min"):
            fn = "tl.maximum" if op == "max" else "tl.minimum"
            return self.emit(f"{fn}({a}, {b})"), "f" if floats else "i"
        if op == "where":
            return self.emit(f"tl.where({a} > {b}, {a}, {b} + 1)"), "f" if floats else "i"
        if op == "cmp":
            return self.emit(f"{a} {rng.choice(['<', '<=', '==', '!=', '>='])} {b}"), "b"
        if op == "unary":
            if ka == "f":
                fn = rng.choice(["tl.exp(-tl.abs({}))", "tl.sqrt(tl.abs({}))", "tl.sin({})",
                                 "-{}", "tl.abs({})", "tl.floor({})"])
                return self.emit(fn.format(a)), "f"
            return self.emit(rng.choice(["-{}", "tl.abs({})", "{} * 3 + 1"]).format(a)), "i"
        # cast: integers may become floats or other integers; floats only other floats
        if ka == "f":
            return self.emit(f"{a}.to(tl.{rng.choice(FLOAT_DTYPES)})"), "f"
        target = rng.choice(FLOAT_DTYPES + INT_DTYPES)
        return self.emit(f"{a}.to(tl.{target})"), "f" if target in FLOAT_DTYPES else "i"


def _tensor(rng: random.Random, dtype: str, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    if dtype in FLOAT_DTYPES:
        return (torch.randn(n, generator=gen, dtype=torch.float64) * 3).to(getattr(torch, dtype))
    low, high = (0, 255) if dtype == "uint8" else (-100, 100)
    return torch.randint(low, high, (n,), generator=gen).to(getattr(torch, dtype))


def _kind(dtype: str) -> str:
    return "f" if dtype in FLOAT_DTYPES else "i"


def _elementwise(rng: random.Random, seed: int) -> FuzzCase:
    name = f"k{seed}"
    dx, dy = rng.choice(FLOAT_DTYPES + INT_DTYPES), rng.choice(FLOAT_DTYPES + INT_DTYPES)
    block = rng.choice([16, 32, 64, 128])
    n = rng.randrange(1, 3 * block)
    lines = ["@triton.jit", f"def helper_{name}(a, b):"]
    helper = ExprBuilder(rng, lines)
    result, _ = helper.expression({"a": _kind(dx), "b": _kind(dy)}, 2)
    lines.append(f"    return {result}")
    lines += ["", "", "@triton.jit",
              f"def {name}(x_ptr, y_ptr, out_ptr, n, s, lo, hi, BLOCK: tl.constexpr):"]
    body = ExprBuilder(rng, lines)
    grid_stride = rng.random() < 0.25
    if grid_stride:
        lines.append("    for start in range(tl.program_id(0) * BLOCK, n, "
                     "tl.num_programs(0) * BLOCK):")
        body.indent = "        "
        lines.append("        offs = start + tl.arange(0, BLOCK)")
    else:
        lines.append("    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)")
    ind = body.indent
    lines.append(f"{ind}mask = offs < n")
    lines.append(f"{ind}x = tl.load(x_ptr + offs, mask=mask, other=1)")
    lines.append(f"{ind}y = tl.load(y_ptr + offs, mask=mask, other=2)")
    names = {"x": _kind(dx), "y": _kind(dy)}
    value, kind = body.expression(names, rng.randrange(1, 4))
    if rng.random() < 0.5:
        names[value] = kind
        value = body.emit(f"helper_{name}(x, y) + {value}" if kind != "b" else
                          f"helper_{name}(x, y)")
        kind = "f" if "f" in (names["x"], names["y"], kind) else "i"
    if kind == "b":
        value, kind = body.emit(f"{value}.to(tl.int32)"), "i"
    if rng.random() < 0.5:  # a loop carrying a tile, either direction
        step = rng.choice(["1", "2", "-1", "-3"])
        bounds = rng.choice([f"lo, hi, {step}", f"hi, lo, -{step.lstrip('-')}",
                             f"0, {rng.randrange(0, 5)}", "hi, lo, s_step"])
        bounds = bounds.replace("s_step", "-1")
        lines.append(f"{ind}acc = {value} * 0")
        lines.append(f"{ind}for i in range({bounds}):")
        lines.append(f"{ind}    acc = acc + ({value} * i).to(acc.dtype)")
        value = "acc"
    if rng.random() < 0.5:  # a runtime if
        condition = rng.choice(["s > 0.5", "tl.program_id(0) % 2 == 0", "n > 40"])
        lines.append(f"{ind}if {condition}:")
        lines.append(f"{ind}    {value} = {value} + 1")
    lines.append(f"{ind}tl.store(out_ptr + offs, {value}.to(tl.float64), mask=mask)")
    source = "\n".join(lines) + "\n"
    programs = triton_cdiv(n, block)
    grid = (max(1, programs // 2),) if grid_stride else (programs,)
    inputs = {"x_ptr": _tensor(rng, dx, n), "y_ptr": _tensor(rng, dy, n),
              "out_ptr": torch.full((n,), float("nan"), dtype=torch.float64), "n": n,
              "s": rng.choice([0.25, 0.75]), "lo": rng.randrange(-3, 3),
              "hi": rng.randrange(3, 9)}
    return FuzzCase(seed, name, source, inputs, {"BLOCK": block}, grid, ["out_ptr"], [dx, dy])


def _reduction(rng: random.Random, seed: int) -> FuzzCase:
    name = f"k{seed}"
    dtype = rng.choice(FLOAT_DTYPES + INT_DTYPES)
    bm, bn = rng.choice([2, 4, 8, 16]), rng.choice([8, 16, 32, 64])
    m, n = rng.randrange(1, 3 * bm), rng.randrange(1, bn + 1)
    axis = rng.choice([0, 1])
    kind = rng.choice(["sum", "max", "min"])
    lines = ["@triton.jit",
             f"def {name}(x_ptr, out_ptr, M, N, stride, BM: tl.constexpr, BN: tl.constexpr):",
             "    rows = tl.program_id(0) * BM + tl.arange(0, BM)",
             "    cols = tl.arange(0, BN)",
             "    mask = (rows[:, None] < M) & (cols[None, :] < N)",
             "    x = tl.load(x_ptr + rows[:, None] * stride + cols[None, :], mask=mask, "
             f"other={'0' if kind == 'sum' else ('-1000' if kind == 'max' else '1000')})"]
    body = ExprBuilder(rng, lines)
    value, k = body.expression({"x": _kind(dtype)}, rng.randrange(0, 3))
    if k == "b":
        value = body.emit(f"{value}.to(tl.int32)")
    if kind == "sum" or rng.random() < 0.5:
        value = body.emit(f"tl.where(mask, {value}, 0)")
    reduced = body.emit(f"tl.{kind}({value}, axis={axis})")
    if axis == 1:
        lines.append(f"    tl.store(out_ptr + rows, {reduced}.to(tl.float64), mask=rows < M)")
        out_len = m
        grid = (triton_cdiv(m, bm),)
    else:
        lines.append(f"    tl.store(out_ptr + tl.program_id(0) * BN + cols, "
                     f"{reduced}.to(tl.float64), mask=cols < N)")
        grid = (triton_cdiv(m, bm),)
        out_len = grid[0] * bn
    source = "\n".join(lines) + "\n"
    data = _tensor(rng, dtype, m * n)
    if dtype in FLOAT_DTYPES and kind == "sum":
        data = data.clamp(-4, 4)
    inputs = {"x_ptr": data, "out_ptr": torch.full((out_len,), float("nan"),
                                                   dtype=torch.float64),
              "M": m, "N": n, "stride": n}
    case = FuzzCase(seed, name, source, inputs, {"BM": bm, "BN": bn}, grid, ["out_ptr"],
                    [dtype])
    return case


def _aliasing(rng: random.Random, seed: int) -> FuzzCase:
    name = f"k{seed}"
    dtype = rng.choice(["float32", "int32", "int8", "float16"])
    block = rng.choice([16, 32, 64])
    n = rng.randrange(2, block + 1)
    pattern = rng.choice(["shift", "reverse", "rotate"])
    index = {"shift": "offs + 1", "reverse": "n - 1 - offs", "rotate": "(offs + 3) % n"}[pattern]
    mask = "offs + 1 < n" if pattern == "shift" else "offs < n"
    lines = ["@triton.jit",
             f"def {name}(buf_ptr, n, BLOCK: tl.constexpr):",
             "    offs = tl.arange(0, BLOCK)",
             f"    mask = {mask}",
             f"    v = tl.load(buf_ptr + ({index}), mask=mask)",
             "    tl.store(buf_ptr + offs, v * 2 + 1, mask=mask)"]
    inputs = {"buf_ptr": _tensor(rng, dtype, n), "n": n}
    return FuzzCase(seed, name, "\n".join(lines) + "\n", inputs, {"BLOCK": block}, (1,),
                    ["buf_ptr"], [dtype])


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


FAMILIES = ("elementwise", "reduction", "aliasing")


def generate(seed: int, rng: random.Random | None = None, family: str | None = None
             ) -> FuzzCase:
    """A random kernel named ``k<seed>``, its choices drawn from ``rng`` (by default
    ``random.Random(seed)``), of one of :data:`FAMILIES` (by default mostly elementwise, some
    reductions and aliasing)."""
    rng = random.Random(seed) if rng is None else rng
    if family is not None:
        return {"elementwise": _elementwise, "reduction": _reduction,
                "aliasing": _aliasing}[family](rng, seed)
    roll = rng.random()
    if roll < 0.55:
        return _elementwise(rng, seed)
    if roll < 0.85:
        return _reduction(rng, seed)
    return _aliasing(rng, seed)


def module_text(cases: list[FuzzCase]) -> str:
    """One importable module with every case's kernel."""
    header = "import triton\nimport triton.language as tl\n\n\n"
    return header + "\n\n".join(case.source for case in cases)
