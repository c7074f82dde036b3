"""Checks for lesson 4's exercises: causal tile bounds, the online-softmax update, window attention.

* :func:`check_causal_key_tiles` compares the learner's loop bounds with a brute-force
  classification of every (query tile, key tile) pair from the element mask.
* :func:`check_online_update` feeds the learner's update one key tile at a time and compares the
  running state after *every* tile with the same quantities computed directly from the prefix, so
  the message says at which tile and in which quantity the update goes wrong.
* :func:`check_window_attention` runs the learner's sliding-window kernel against a float64 torch
  reference, on sequence lengths that are not multiples of the tile, for several window widths.
"""

from __future__ import annotations

import math

import torch

from ..check import WrongAnswer, check_close
from ..env import configure
from ..widgets.attention_tiles import FULL, MASKED, tile_kinds
from . import learner_code, passed


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
    """(m, l, acc) computed directly from the first ``end`` keys: what the update must produce."""
    prefix = s[:, :end]
    m = prefix.max(dim=1).values
    p = torch.exp(prefix - m[:, None])
    return m, p.sum(dim=1), p @ v[:end]


def check_online_update(online_update) -> None:
    """``online_update(m, l, acc, s, v)`` -> (m, l, acc) after one more tile of scores ``s``."""
    name = "online_update"
    gen = torch.Generator().manual_seed(4)
    rows, n, d, block = 5, 70, 8, 16  # 70 keys: the last tile holds 6
    # Scores that drift upwards (so the maximum grows), plus a large offset in one row: computing
    # exp(s) without subtracting the maximum overflows there.
    s = torch.randn(rows, n, generator=gen, dtype=torch.float64) * 2
    s += torch.linspace(0, 6, n, dtype=torch.float64)
    s[2] += 800.0
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
        check_close(m, want_m, name=f"{name}: running max m {step}", quiet=True)
        check_close(
            l_run, want_l, name=f"{name}: running sum l {step} (did you rescale the old sum by "
            "exp(m_old - m_new)?)", quiet=True,
        )  # fmt: skip
        check_close(
            acc, want_acc, name=f"{name}: accumulator {step} (rescale it by exp(m_old - m_new) "
            "before adding P @ V)", quiet=True,
        )  # fmt: skip
    check_close(acc / l_run[:, None], torch.softmax(s, dim=1) @ v, name=f"{name}: final output",
                quiet=True)  # fmt: skip
    passed(name, "running max, sum and accumulator right after every tile; acc / l == softmax V")


def window_reference(q, k, v, window: int, sm_scale: float) -> torch.Tensor:
    """Sliding-window causal attention in float64: query i sees keys i - window + 1 ... i."""
    n = q.shape[-2]
    rows = torch.arange(n)[:, None]
    cols = torch.arange(n)[None, :]
    hidden = (cols > rows) | (cols <= rows - window)
    scores = (q.double() @ k.double().transpose(-2, -1)) * sm_scale
    scores = scores.masked_fill(hidden.to(scores.device), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v.double()


def check_window_attention(window_attention) -> None:
    """``window_attention(q, k, v, window)`` must equal sliding-window attention (float64 ref)."""
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
    passed(name, f"matches the float64 reference for windows {windows} and shapes {shapes}")
