"""Greedy generation, and a decode step replayed from a CUDA graph.

Generation is a prefill (the whole prompt in one forward pass, filling the KV cache) followed by
one decode step per new token: the last token in, the next token's logits out. Greedy decoding
takes the most likely token each time, so two implementations of the same model generate the same
tokens, unless two tokens are so close that rounding decides between them
(:func:`compare_generations` tells those cases apart).

A decode step of a 1B model launches about 150 small kernels. From Python each launch costs the
CPU tens of microseconds, more than many of the kernels take on the GPU. A CUDA graph records the
launches once and replays them with one call: :class:`GraphedDecodeStep`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cache import KVCache


def greedy_generate(model, prompt: torch.Tensor, n_new: int, *, cache: KVCache | None = None,
                    step=None) -> tuple[torch.Tensor, list[torch.Tensor]]:  # fmt: skip
    """``(tokens, logits)``: ``n_new`` tokens after ``prompt`` ``(batch, seq)``, and the logits each
    token was chosen from (fp32, ``(batch, vocab)`` each). ``step`` replaces the decode call
    (a :class:`GraphedDecodeStep`)."""
    cache = cache or model.new_cache(prompt.shape[0])
    logits = model(prompt, cache, last_only=True)[:, -1].float()
    chosen, all_logits = [], []
    for i in range(n_new):
        token = logits.argmax(-1)
        chosen.append(token)
        all_logits.append(logits)
        if i + 1 < n_new:
            feed = token[:, None].to(prompt.dtype)
            out = step(feed) if step is not None else model(feed, cache, last_only=True)
            logits = out[:, -1].float()
    return torch.stack(chosen, 1), all_logits


@dataclass
class Agreement:
    same: bool
    first_difference: int | None  # step of the first different token, if any
    margin: float | None  # the reference's logit gap between the two tokens there
    message: str


def compare_generations(tokens, reference_tokens, reference_logits, *, tie: float) -> Agreement:
    """Do two greedy generations agree? Where they first differ, the reference's logits say whether
    that was a near tie (gap ``<= tie``, which rounding may decide) or a real disagreement."""
    a, b = tokens.cpu(), reference_tokens.cpu()
    diff = (a != b).any(0).nonzero().flatten()
    if len(diff) == 0:
        return Agreement(
            True, None, None, f"all {a.shape[1]} tokens agree, in {a.shape[0]} sequence(s)"
        )
    step = int(diff[0])
    row = int((a[:, step] != b[:, step]).nonzero()[0])
    logits = reference_logits[step][row].cpu()
    margin = float(logits[b[row, step]] - logits[a[row, step]])
    kind = "a near tie" if margin <= tie else "a real disagreement"
    return Agreement(
        False, step, margin,
        f"tokens agree up to step {step}; there the reference's logits for its token and ours "
        f"differ by {margin:.3g} ({kind}, the tie threshold is {tie:.3g})",
    )  # fmt: skip


class GraphedDecodeStep:
    """One decode step of a :class:`~course.llm.model.CourseLlama` captured in a CUDA graph.

    Capturing records the launches of :meth:`~course.llm.model.CourseLlama.forward_launches` for
    one token per sequence, with the kernels reading the position from ``cache.position``, then a
    one-element add that moves that position on. Calling the object copies the new tokens into the
    graph's input buffer, replays the graph, and moves the host's count on too. It is only valid
    for the cache it was captured with. On a CPU nothing is captured and each call runs the same
    launches and the same add, so the step's logic can be tested without a GPU.
    """

    def __init__(self, model, cache: KVCache):
        if cache.length == 0:
            raise ValueError("capture a decode step after the prefill: the cache is empty")
        cache.reserve(1)  # the warm-up below writes position cache.length: it must exist
        self.model, self.cache = model, cache
        self.tokens = torch.zeros(cache.batch, 1, dtype=torch.int64, device=model.device)
        if model.device.type != "cuda":  # no graphs on a CPU: each call runs what a replay would
            self.graph = None
            return
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # Warm up (compile and autotune outside the capture). It writes the next position's keys
        # and values, which the first real step overwrites; capturing runs nothing.
        with torch.cuda.stream(stream):
            model.forward_launches(self.tokens, cache, cache.length, last_only=True)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model.forward_launches(self.tokens, cache, cache.length, last_only=True)
            cache.position.add_(1)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        self.cache.reserve(1)
        self.tokens.copy_(tokens)
        if self.graph is None:
            self.logits = self.model.forward_launches(self.tokens, self.cache, self.cache.length,
                                                      last_only=True)  # fmt: skip
            self.cache.position.add_(1)
        else:
            self.graph.replay()
        self.cache.length += 1
        return self.logits
