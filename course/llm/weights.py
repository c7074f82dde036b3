"""Model weights: named as in a Llama checkpoint, made at random (deterministically), or packed.

Weights live in a plain dict keyed by the names Llama checkpoints use (the Hugging Face layout),
so random weights, a loaded checkpoint and both models all speak the same language::

    model.embed_tokens.weight                      (vocab, hidden)
    model.layers.{i}.input_layernorm.weight        (hidden,)
    model.layers.{i}.self_attn.q_proj.weight       (n_heads * head_dim, hidden)
    model.layers.{i}.self_attn.k_proj.weight       (n_kv_heads * head_dim, hidden)
    model.layers.{i}.self_attn.v_proj.weight       (n_kv_heads * head_dim, hidden)
    model.layers.{i}.self_attn.o_proj.weight       (hidden, n_heads * head_dim)
    model.layers.{i}.post_attention_layernorm.weight
    model.layers.{i}.mlp.gate_proj.weight          (ffn, hidden)
    model.layers.{i}.mlp.up_proj.weight            (ffn, hidden)
    model.layers.{i}.mlp.down_proj.weight          (hidden, ffn)
    model.norm.weight                              (hidden,)
    lm_head.weight                                 (vocab, hidden), absent when tied

Random weights are no language model, but they exercise exactly the same arithmetic at exactly
the same shapes, which is all a speed measurement and a correctness check need.
"""

from __future__ import annotations

import math

import torch

from .config import LlamaConfig


def layer_names(i: int) -> dict[str, str]:
    p = f"model.layers.{i}."
    return {
        "attn_norm": p + "input_layernorm.weight",
        "q": p + "self_attn.q_proj.weight",
        "k": p + "self_attn.k_proj.weight",
        "v": p + "self_attn.v_proj.weight",
        "o": p + "self_attn.o_proj.weight",
        "mlp_norm": p + "post_attention_layernorm.weight",
        "gate": p + "mlp.gate_proj.weight",
        "up": p + "mlp.up_proj.weight",
        "down": p + "mlp.down_proj.weight",
    }


def expected_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's name and shape for ``config``."""
    c = config
    q_width, kv_width = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    shapes = {"model.embed_tokens.weight": (c.vocab, c.hidden), "model.norm.weight": (c.hidden,)}
    for i in range(c.n_layers):
        n = layer_names(i)
        shapes.update({
            n["attn_norm"]: (c.hidden,), n["mlp_norm"]: (c.hidden,),
            n["q"]: (q_width, c.hidden), n["k"]: (kv_width, c.hidden), n["v"]: (kv_width, c.hidden),
            n["o"]: (c.hidden, q_width),
            n["gate"]: (c.ffn, c.hidden), n["up"]: (c.ffn, c.hidden), n["down"]: (c.hidden, c.ffn),
        })  # fmt: skip
    if not c.tie_embeddings:
        shapes["lm_head.weight"] = (c.vocab, c.hidden)
    return shapes


def random_weights(
    config: LlamaConfig, *, device="cpu", dtype=torch.float32, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Deterministic random weights (the same for the same seed, device type and dtype).

    Matrices are normal with standard deviation ``1 / sqrt(fan_in)``, so every projection keeps its
    input's scale; so is the embedding, whose rows then have length about 1. Norm weights are near
    1, except the final norm's, near 4: the logits then have a standard deviation of about 4, so the
    top token usually stands clear of the next one (near 1, greedy choices would often hinge on
    rounding). A larger embedding would do the same for a tied head, but each token's own row would
    then dominate its logits and a random model would repeat its input token.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    weights = {}
    for name, shape in expected_shapes(config).items():
        if len(shape) == 1:
            scale = 4.0 if name == "model.norm.weight" else 1.0
            w = scale * (1.0 + 0.1 * torch.randn(shape, generator=gen, device=device))
        else:
            w = torch.randn(shape, generator=gen, device=device) / math.sqrt(shape[1])
        weights[name] = w.to(dtype)
    return weights


def check_weights(weights: dict[str, torch.Tensor], config: LlamaConfig) -> None:
    """Raise a ValueError naming every missing, extra or misshapen weight."""
    want = expected_shapes(config)
    missing = sorted(set(want) - set(weights))
    extra = sorted(set(weights) - set(want))
    wrong = [f"{n}: {tuple(weights[n].shape)}, expected {want[n]}"
             for n in want if n in weights and tuple(weights[n].shape) != want[n]]  # fmt: skip
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:4])}")
    if extra:
        problems.append(f"unexpected {len(extra)}: {', '.join(extra[:4])}")
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong[:4]))
    if problems:
        raise ValueError("weights do not fit the config: " + " | ".join(problems))


def output_head(weights: dict[str, torch.Tensor], config: LlamaConfig) -> torch.Tensor:
    """The logits' weight: the embedding itself when tied."""
    return weights["model.embed_tokens.weight" if config.tie_embeddings else "lm_head.weight"]
