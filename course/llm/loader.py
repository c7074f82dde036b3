"""Loading real Llama weights from a local folder of safetensors files.

A Llama checkpoint in the Hugging Face layout is a folder with ``config.json`` and the weights in
one ``model.safetensors`` or several shards listed in ``model.safetensors.index.json``. Nothing
here downloads anything: point :func:`load_checkpoint` at a folder you already have, e.g.::

    config, weights = load_checkpoint("~/models/Llama-3.2-1B", device="cuda", dtype=torch.bfloat16)
    model = CourseLlama(weights, config)

Safetensors stores each tensor's dtype, shape and raw bytes behind a small JSON header, so loading
is a memory map and a copy, with no code from the file executed (unlike a pickled ``.pt`` file).
Token ids come from the model's tokenizer, which is not part of this course: a learner with real
weights encodes text with the ``tokenizers`` package or the model's own tooling.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import LlamaConfig, RopeScaling
from .weights import check_weights


def config_from_json(data: dict, *, max_seq: int = 4096) -> LlamaConfig:
    """A :class:`LlamaConfig` from a checkpoint's ``config.json`` contents."""
    if data.get("model_type", "llama") != "llama":
        raise ValueError(f"config.json describes a {data.get('model_type')!r} model, not 'llama'")
    scaling = data.get("rope_scaling")
    rope = None
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind != "llama3":
            raise ValueError(f"rope_scaling type {kind!r} is not supported (only 'llama3')")
        rope = RopeScaling(
            factor=scaling["factor"],
            low_freq_factor=scaling["low_freq_factor"],
            high_freq_factor=scaling["high_freq_factor"],
            original_context=scaling["original_max_position_embeddings"],
        )
    heads = data["num_attention_heads"]
    return LlamaConfig(
        hidden=data["hidden_size"], n_layers=data["num_hidden_layers"], n_heads=heads,
        n_kv_heads=data.get("num_key_value_heads", heads), ffn=data["intermediate_size"],
        vocab=data["vocab_size"], head_dim=data.get("head_dim", data["hidden_size"] // heads),
        rope_theta=data.get("rope_theta", 10000.0), rope_scaling=rope,
        norm_eps=data.get("rms_norm_eps", 1e-5),
        tie_embeddings=data.get("tie_word_embeddings", False),
        max_seq=min(max_seq, data.get("max_position_embeddings", max_seq)),
    )  # fmt: skip


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"no *.safetensors files in {folder}: expected model.safetensors or shards listed in "
            "model.safetensors.index.json"
        )
    return files


def load_checkpoint(
    folder, *, device="cpu", dtype=None, max_seq: int = 4096
) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """``(config, weights)`` from a local Llama checkpoint folder (see the module docstring)."""
    try:
        from safetensors.torch import load_file
    except ImportError as error:
        raise ImportError(
            "loading checkpoints needs safetensors: pip install safetensors"
        ) from error
    folder = Path(folder).expanduser()
    config_file = folder / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{config_file} not found: a checkpoint folder has a config.json")
    config = config_from_json(json.loads(config_file.read_text()), max_seq=max_seq)
    weights: dict[str, torch.Tensor] = {}
    for path in _weight_files(folder):
        for name, tensor in load_file(str(path), device="cpu").items():
            if name.endswith("rotary_emb.inv_freq"):  # some exports store the RoPE table: unused
                continue
            weights[name] = tensor.to(device=device, dtype=dtype or tensor.dtype)
    if config.tie_embeddings:
        weights.pop("lm_head.weight", None)  # a tied head may be stored as a copy
    check_weights(weights, config)
    return config, weights


def save_checkpoint(folder, config: LlamaConfig, weights: dict[str, torch.Tensor]) -> Path:
    """Write ``weights`` and a matching ``config.json`` in the Hugging Face layout (for tests, and
    to hand a model to other tools)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rope = config.rope_scaling
    data = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "hidden_size": config.hidden, "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads, "num_key_value_heads": config.n_kv_heads,
        "intermediate_size": config.ffn, "vocab_size": config.vocab, "head_dim": config.head_dim,
        "rope_theta": config.rope_theta, "rms_norm_eps": config.norm_eps,
        "tie_word_embeddings": config.tie_embeddings, "max_position_embeddings": config.max_seq,
        "rope_scaling": None if rope is None else {
            "rope_type": "llama3", "factor": rope.factor, "low_freq_factor": rope.low_freq_factor,
            "high_freq_factor": rope.high_freq_factor,
            "original_max_position_embeddings": rope.original_context,
        },
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(data, indent=2) + "\n")
    save_file(
        {n: t.contiguous().cpu() for n, t in weights.items()}, str(folder / "model.safetensors")
    )
    return folder
