"""Checks for lesson 4's exercises: causal tile bounds, the online-softmax update, window attention.

* :func:`check_causal_key_tiles` compares the learner's loop bounds with a brute-force
  classification of every (query tile, key tile) pair from the element mask.
* :func:`check_online_update` feeds the learner's update one key tile at a time and compares the
  running state after *every* tile with the same quantities computed directly from the prefix, so
  the message says at which tile and in which quantity the update goes wrong.
* :func:`check_window_attention` runs the learner's sliding-window kernel against a float64 torch
  reference, on sequence lengths that are not multiples of the tile, for several window widths;
  then proves that each query tile reads only the key tiles its window can see, and scores the
  bytes the kernel moves (counted by ``mini_compiler``'s interpreter) against a budget.
* :func:`check_dq_update` (in :mod:`.lesson04_backward`) checks the backward-pass exercise.
"""

from __future__ import annotations

import math

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from ..traffic import measure_traffic
from ..widgets.attention_tiles import FULL, MASKED, tile_kinds
from . import learner_code, passed
from .lesson04_backward import check_dq_update  # noqa: F401 - the backward exercise's check


def _as_list(value, what: str, exercise: str) -> list[int]:
    try:
        return [int(i) for i in value]
    except TypeError as exc:
        raise WrongAnswer(
            f"{exercise}: {what} should be a range (or list) of key-tile indices, got {value!r}"
        ) from exc


def check_causal_key_tiles(causal_key_tiles) -> None:
    """``causal_key_tiles(tile_m, block_m, block_n, n)`` -> (unmasked tiles, masked tiles)."""
    name = "causal_key_tiles"
    cases = [
        (n, bm, bn)
        for n in (64, 100, 256, 300, 1000)
        for bm, bn in ((64, 64), (64, 32), (128, 32), (32, 16))
    ]
    for n, block_m, block_n in cases:
        kinds = tile_kinds(n, block_m, block_n, causal=True)
        for tile_m in range(kinds.shape[0]):
            want_full = [j for j in range(kinds.shape[1]) if kinds[tile_m, j] == FULL]
            want_masked = [j for j in range(kinds.shape[1]) if kinds[tile_m, j] == MASKED]
            with learner_code(name):
                result = causal_key_tiles(tile_m, block_m, block_n, n)
            if not isinstance(result, tuple) or len(result) != 2:
                raise WrongAnswer(f"{name}: return a pair (unmasked, masked), got {result!r}")
            full = _as_list(result[0], "the first item (unmasked tiles)", name)
            masked = _as_list(result[1], "the second item (masked tiles)", name)
            where = f"query tile {tile_m} with N={n}, BLOCK_M={block_m}, BLOCK_N={block_n}"
            if full != want_full:
                raise WrongAnswer(
                    f"{name}: for {where} the key tiles that need no mask are {want_full}, "
                    f"you gave {full}. They are the tiles wholly below the diagonal: every key "
                    "before the query tile's first row."
                )
            if masked != want_masked:
                raise WrongAnswer(
                    f"{name}: for {where} the key tiles that need the causal mask are "
                    f"{want_masked}, you gave {masked}. They cover the keys from the tile's first "
                    "query to its last one (and no key past N)."
                )
    passed(name, f"bounds match the brute-force tile map in all {len(cases)} configurations")


def _prefix_state(s: torch.Tensor, v: torch.Tensor, end: int):
    """(m, l, acc) computed directly from the first ``end`` keys: what the update must produce.

    A row whose scores so far are all -inf (fully masked) has m = -inf, l = 0 and acc = 0."""
    prefix = s[:, :end]
    m = prefix.max(dim=1).values
    m_safe = torch.where(torch.isinf(m) & (m < 0), torch.zeros_like(m), m)
    p = torch.exp(prefix - m_safe[:, None])
    return m, p.sum(dim=1), p @ v[:end]


MASKED_ROW = 3  # its first key tile is entirely -inf, and so is a later one


def check_online_update(online_update) -> None:
    """``online_update(m, l, acc, s, v)`` -> (m, l, acc) after one more tile of scores ``s``."""
    name = "online_update"
    gen = torch.Generator().manual_seed(4)
    rows, n, d, block = 5, 70, 8, 16  # 70 keys: the last tile holds 6
    # Scores that drift upwards (so the maximum grows), plus a large offset in one row: computing
    # exp(s) without subtracting the maximum overflows there. One row is fully masked (-inf) in
    # its first tile and in its third: a causal or windowed kernel meets such tiles, and
    # exp(m_old - m_new) = exp(-inf - (-inf)) is NaN unless the update guards against it.
    s = torch.randn(rows, n, generator=gen, dtype=torch.float64) * 2
    s += torch.linspace(0, 6, n, dtype=torch.float64)
    s[2] += 800.0
    s[MASKED_ROW, :block] = -math.inf
    s[MASKED_ROW, 2 * block : 3 * block] = -math.inf
    v = torch.randn(n, d, generator=gen, dtype=torch.float64)
    m = torch.full((rows,), -math.inf, dtype=torch.float64)
    l_run = torch.zeros(rows, dtype=torch.float64)
    acc = torch.zeros(rows, d, dtype=torch.float64)
    for t, start in enumerate(range(0, n, block)):
        end = min(start + block, n)
        with learner_code(name):
            result = online_update(m.clone(), l_run.clone(), acc.clone(), s[:, start:end],
                                   v[start:end])  # fmt: skip
        if not isinstance(result, tuple) or len(result) != 3:
            raise WrongAnswer(f"{name}: return a tuple (m, l, acc), got {type(result).__name__}")
        m, l_run, acc = result
        want_m, want_l, want_acc = _prefix_state(s, v, end)
        step = f"after key tile {t} (keys {start}..{end - 1})"
        masked_tile = bool(torch.isinf(s[MASKED_ROW, start:end]).all())
        if masked_tile and any(torch.isnan(x[MASKED_ROW]).any() for x in (m, l_run, acc)):
            raise WrongAnswer(
                f"{name}: {step}, row {MASKED_ROW} holds NaN. Every score of that row in this "
                "tile is -inf (a fully masked tile), so its new maximum is -inf too"
                + (" (no key has been visible yet)" if t == 0 else "")
                + ", and exp(m_old - m_new) = exp(-inf - (-inf)) = exp(nan). Compute the "
                "exponentials against a safe maximum, m_safe = where(m_new == -inf, 0, m_new), "
                "as the lesson's kernels do."
            )
        check_close(m, want_m, name=f"{name}: running max m {step}", quiet=True, poisoned=False)
        check_close(
            l_run, want_l, name=f"{name}: running sum l {step} (did you rescale the old sum by "
            "exp(m_old - m_new)?)", quiet=True, poisoned=False,
        )  # fmt: skip
        check_close(
            acc, want_acc, name=f"{name}: accumulator {step} (rescale it by exp(m_old - m_new) "
            "before adding P @ V)", quiet=True, poisoned=False,
        )  # fmt: skip
    check_close(acc / l_run[:, None], torch.softmax(s, dim=1) @ v, name=f"{name}: final output",
                quiet=True, poisoned=False)  # fmt: skip
    passed(
        name,
        "running max, sum and accumulator right after every tile, including fully masked "
        "(all -inf) tiles; acc / l == softmax V",
    )


def window_reference(q, k, v, window: int, sm_scale: float) -> torch.Tensor:
    """Sliding-window causal attention in float64: query i sees keys i - window + 1 ... i."""
    n = q.shape[-2]
    rows = torch.arange(n)[:, None]
    cols = torch.arange(n)[None, :]
    hidden = (cols > rows) | (cols <= rows - window)
    scores = (q.double() @ k.double().transpose(-2, -1)) * sm_scale
    scores = scores.masked_fill(hidden.to(scores.device), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v.double()


def check_window_attention(window_attention, kernel=None) -> None:
    """``window_attention(q, k, v, window)`` must equal sliding-window attention (float64 ref).

    With ``kernel`` (the exercise's ``window_attention_kernel``) the check also counts the bytes
    the kernel moves and fails one that moves more than a tile-skipping kernel must."""
    name = "window_attention"
    env = configure()
    if env.on_gpu:
        shapes, dtype = [(2, 4, 1000, 64), (1, 2, 4097, 128)], torch.float16
    else:
        shapes, dtype = [(1, 2, 100, 32), (1, 1, 64, 16)], torch.float32
    windows = (1, 16, 40, 1000)
    gen = torch.Generator(device=env.device).manual_seed(7)
    for shape in shapes:
        q, k, v = (torch.randn(*shape, device=env.device, dtype=dtype, generator=gen)
                   for _ in range(3))  # fmt: skip
        for window in windows:
            with learner_code(name):
                out = window_attention(q, k, v, window)
            expected = window_reference(q, k, v, window, 1.0 / math.sqrt(shape[-1]))
            # fp16 probabilities feed the second product: allow 1%; a wrong mask is off by far more
            tol = {"rtol": 1e-2, "atol": 1e-2} if dtype == torch.float16 else {}
            check_close(out, expected, name=f"{name} (shape {shape}, window {window})",
                        quiet=True, **tol)  # fmt: skip
    visits = _check_window_tile_visits(window_attention, dtype)
    traffic = "traffic not scored (pass the kernel too)" if kernel is None else \
        _check_window_traffic(kernel)
    passed(
        name,
        f"matches the float64 reference for windows {windows} and shapes {shapes}; {visits}; "
        f"{traffic}",
    )


def window_traffic_budget(n: int, head_dim: int, window: int, block_m: int, block_n: int,
                          element: int = 4) -> tuple[int, int]:
    """(minimum, budget) in bytes for one head of sliding-window attention.

    Every kernel loads each query row once and stores each output row once. The *minimum* loads,
    for each query tile, exactly the keys and values its rows can see: from its first row's
    first visible key to its last row. The *budget* is what a kernel that walks whole key tiles
    loads: its loop starts at that first key rounded down to a multiple of ``block_n`` (rows past
    N masked off, so not loaded)."""
    rows_needed = rows_walked = 0
    for start_m in range(0, n, block_m):
        first = max(start_m - window + 1, 0)
        end = min(start_m + block_m, n)
        rows_needed += end - first
        rows_walked += sum(min(block_n, n - s) for s in range((first // block_n) * block_n, end,
                                                               block_n))  # fmt: skip
    q_and_out = 2 * n * head_dim * element
    return (q_and_out + 2 * rows_needed * head_dim * element,
            q_and_out + 2 * rows_walked * head_dim * element)


def _check_window_traffic(kernel, block: int = 32) -> str:
    """Run ``kernel`` once in ``mini_compiler``'s interpreter and count its bytes (fp32)."""
    import triton

    import mini_compiler

    name = "window_attention"
    n, d, window = 100, 16, 40
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 1, n, d, generator=gen) for _ in range(3))
    try:
        with learner_code(name):
            traffic = measure_traffic(kernel, (triton.cdiv(n, block), 1), q, k, v,
                                      torch.empty_like(q), n, 1.0 / math.sqrt(d), window,
                                      HEAD_DIM=d, BLOCK_M=block, BLOCK_N=block)  # fmt: skip
    except WrongAnswer as error:
        if isinstance(error.__cause__, mini_compiler.OutOfBoundsError):
            raise WrongAnswer(f"{name}: your kernel reads or writes outside a tensor:\n"
                              f"{error.__cause__}\nMask every load and store.") from None
        return "traffic not counted (mini_compiler does not compile this kernel)"
    minimum, budget = window_traffic_budget(n, d, window, block, block)
    report = (f"moved {traffic.total:,} B (N={n}, d={d}, window {window}, fp32); minimum "
              f"{minimum:,} B, budget {budget:,} B")
    if traffic.total > budget:
        raise WrongAnswer(
            f"{name}: right answer, but your kernel moves {traffic.total:,} bytes "
            f"({traffic.describe()}) with N={n}, HEAD_DIM={d}, window {window}, BLOCK_M = "
            f"BLOCK_N = {block}, fp32. A kernel that loads each query tile once, walks only the "
            f"key tiles of its window and stores once moves {budget:,} bytes (the budget; the "
            f"ideal, with no partial tiles, is {minimum:,}). Load q before the loop, not in it; "
            "load each key and value tile once per visit; start the loop at the window's first "
            "key tile and stop at min(start_m + BLOCK_M, N)."
        )
    return report


def _check_window_tile_visits(window_attention, dtype, block: int = 32) -> str:
    """Prove that each query tile reads only the key/value tiles its window can see.

    One head per query tile: in head ``i`` every key and value row that query tile ``i`` has no
    reason to read is set to NaN (with a slack of one tile less one row on either side, for
    loops that start or end on tile boundaries). A kernel that visits such a tile multiplies its
    probabilities (zeros, after the mask) by NaN values and query tile ``i``'s rows come out NaN,
    however correct the mask. Masked loads read nothing, so a visit that loads nothing is free.
    """
    name = "window_attention"
    env = configure()
    n, d = 5 * block, 16
    tiles = n // block
    gen = torch.Generator(device=env.device).manual_seed(11)
    for window in (16, 40):
        q, k, v = (torch.randn(1, tiles, n, d, device=env.device, dtype=dtype, generator=gen)
                   for _ in range(3))  # fmt: skip
        allowed = []
        for i in range(tiles):
            start_m = i * block
            need_lo, need_hi = max(0, start_m - window + 1), min(start_m + block, n)
            lo, hi = max(0, need_lo - (block - 1)), min(n, need_hi + block - 1)
            k[0, i, :lo] = v[0, i, :lo] = float("nan")
            k[0, i, hi:] = v[0, i, hi:] = float("nan")
            allowed.append((need_lo, need_hi))
        with learner_code(name):
            out = window_attention(q, k, v, window)
        for i, (need_lo, need_hi) in enumerate(allowed):
            rows = out[0, i, i * block : (i + 1) * block]
            if torch.isnan(rows).any():
                raise WrongAnswer(
                    f"{name}: with window {window}, BLOCK_M = BLOCK_N = {block} and N = {n}, "
                    f"query tile {i} (rows {i * block}..{(i + 1) * block - 1}) read key/value "
                    "tiles its window cannot see: its rows need only keys "
                    f"{need_lo}..{need_hi - 1}, but the loop loaded keys outside them. "
                    "Skipping those tiles is the point of the exercise: start the loop at the "
                    "key tile holding the first key the tile's first row can see (rounded down "
                    "to a multiple of BLOCK_N) and stop at min(start_m + BLOCK_M, N)."
                )
    return "each query tile reads only the key tiles of its window"
