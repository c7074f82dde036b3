"""The capstone's decoder: course kernels against the torch reference, generation, the loader."""

import json

import pytest
import torch

import course
from course.check import check_close
from course.llm import (
    TINY,
    CourseLlama,
    LlamaConfig,
    TorchLlama,
    compare_generations,
    greedy_generate,
    load_checkpoint,
    random_weights,
    save_checkpoint,
)  # fmt: skip
from course.llm.config import LLAMA_3_2_1B, inverse_frequencies

DEVICE = course.configure().device
# fp32 end to end: exact to rounding on the CPU. On a GPU every tl.dot rounds its fp32 inputs to
# TF32 (10-bit mantissa); through two layers the logits (spread about 4) move by a few 1e-2.
TOL = {"rtol": 2e-2, "atol": 1e-1} if course.configure().on_gpu else {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def weights():
    return random_weights(TINY, device=DEVICE, seed=3)


def test_prefill_then_decode_match_float64_reference(weights):
    ours, ref = CourseLlama(weights, TINY), TorchLlama(weights, TINY, dtype=torch.float64)
    c_ours, c_ref = ours.new_cache(2), ref.new_cache(2)
    prompt = torch.randint(0, TINY.vocab, (2, 11),
                           generator=torch.Generator().manual_seed(0)).to(DEVICE)
    check_close(ours(prompt, c_ours), ref(prompt, c_ref), **TOL, quiet=True)
    for step in range(2):  # decode steps, then a chunk of 3 new tokens after the cache
        new = prompt[:, step : step + 1]
        check_close(ours(new, c_ours), ref(new, c_ref), name=f"step {step}", **TOL)
    check_close(ours(prompt[:, :3], c_ours), ref(prompt[:, :3], c_ref), **TOL)
    assert c_ours.length == c_ref.length == 16 and int(c_ours.position) == 16


def test_greedy_generation_agrees(weights):
    ours, ref = CourseLlama(weights, TINY), TorchLlama(weights, TINY, dtype=torch.float64)
    prompt = torch.randint(0, TINY.vocab, (1, 7),
                           generator=torch.Generator().manual_seed(1)).to(DEVICE)
    tokens, _ = greedy_generate(ours, prompt, 4)
    ref_tokens, ref_logits = greedy_generate(ref, prompt, 4)
    agreement = compare_generations(tokens, ref_tokens, ref_logits, tie=1e-3)
    assert agreement.same, agreement.message


def test_compare_generations_tells_a_tie_from_a_disagreement():
    logits = [torch.tensor([[0.0, 5.0, 4.9995]]), torch.tensor([[3.0, 0.0, 1.0]])]
    ref = torch.tensor([[1, 0]])
    tie = compare_generations(torch.tensor([[2, 0]]), ref, logits, tie=1e-3)
    assert not tie.same and tie.first_difference == 0 and "near tie" in tie.message
    real = compare_generations(torch.tensor([[1, 2]]), ref, logits, tie=1e-3)
    assert real.first_difference == 1 and "real disagreement" in real.message


def test_mini_compiler_runs_every_kernel(weights):
    import mini_compiler

    ours = CourseLlama(weights, TINY, compile=mini_compiler.jit)
    ref = TorchLlama(weights, TINY, dtype=torch.float64)
    prompt = torch.randint(0, TINY.vocab, (1, 6),
                           generator=torch.Generator().manual_seed(2)).to(DEVICE)
    c_ours, c_ref = ours.new_cache(1), ref.new_cache(1)
    check_close(ours(prompt, c_ours), ref(prompt, c_ref), **TOL, quiet=True)
    new = prompt[:, :1]
    check_close(ours(new, c_ours), ref(new, c_ref), **TOL, quiet=True)
    if not course.configure().on_gpu:
        assert set(ours.compiled_by.values()) == {"mini_compiler"}, ours.compiled_by
    else:  # the GPU back end does not lower tl.dot yet: those kernels fall back to Triton
        for name, by in ours.compiled_by.items():
            assert by == "mini_compiler" or "does not lower" in by, (name, by)


def test_untied_head_and_cache_overflow():
    config = TINY.with_(tie_embeddings=False, n_layers=1, max_seq=16)
    w = random_weights(config, device=DEVICE)
    assert "lm_head.weight" in w
    ours, ref = CourseLlama(w, config), TorchLlama(w, config, dtype=torch.float64)
    prompt = torch.randint(0, config.vocab, (1, 5)).to(DEVICE)
    check_close(ours(prompt, ours.new_cache(1)), ref(prompt, ref.new_cache(1)), quiet=True,
                **TOL)  # fmt: skip
    cache = ours.new_cache(1)
    with pytest.raises(ValueError, match="KV cache full"):
        ours(torch.zeros(1, 17, dtype=torch.int64, device=DEVICE), cache)


def test_config_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        LlamaConfig(hidden=64, n_layers=1, n_heads=4, n_kv_heads=3, ffn=8, vocab=8, head_dim=16)
    with pytest.raises(ValueError, match="power of two"):
        LlamaConfig(hidden=96, n_layers=1, n_heads=4, n_kv_heads=2, ffn=8, vocab=8)
    assert LLAMA_3_2_1B.parameter_count() == 1_235_814_400  # Llama-3.2-1B: 1.24 B parameters


def test_llama3_rope_scaling_keeps_high_and_scales_low_frequencies():
    inv = inverse_frequencies(LLAMA_3_2_1B)
    plain = inverse_frequencies(LLAMA_3_2_1B.with_(rope_scaling=None))
    assert inv[0] == plain[0]  # the fastest rotation is untouched
    assert torch.isclose(inv[-1], plain[-1] / 32)  # the slowest is stretched by the factor


def test_checkpoint_round_trip(tmp_path, weights):
    folder = save_checkpoint(tmp_path / "tiny-llama", TINY, weights)
    config, loaded = load_checkpoint(folder, device=DEVICE)
    assert config == TINY
    assert all(torch.equal(loaded[n], weights[n]) for n in weights)
    ours = CourseLlama(loaded, config)
    prompt = torch.randint(0, TINY.vocab, (1, 4)).to(DEVICE)
    ref = TorchLlama(weights, TINY, dtype=torch.float64)
    check_close(ours(prompt, ours.new_cache(1)), ref(prompt, ref.new_cache(1)), quiet=True,
                **TOL)  # fmt: skip


def test_loader_reads_shards_and_explains_problems(tmp_path, weights):
    from safetensors.torch import save_file

    folder = save_checkpoint(tmp_path / "sharded", TINY, weights)
    (folder / "model.safetensors").unlink()
    names = sorted(weights)
    halves = {"model-00001-of-00002.safetensors": names[::2],
              "model-00002-of-00002.safetensors": names[1::2]}  # fmt: skip
    for file, part in halves.items():
        save_file({n: weights[n].contiguous().cpu() for n in part}, str(folder / file))
    index = {"weight_map": {n: f for f, part in halves.items() for n in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    config, loaded = load_checkpoint(folder)
    assert set(loaded) == set(weights)

    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(Exception, match="00002"):
        load_checkpoint(folder)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_checkpoint(tmp_path / "nowhere")
    partial = save_checkpoint(tmp_path / "partial", TINY,
                              {n: t for n, t in weights.items() if "layers.1." not in n})
    with pytest.raises(ValueError, match="missing 9"):
        load_checkpoint(partial)


def test_static_reference_matches_the_sliced_one(weights):
    """The static-cache form (for torch.compile and CUDA graphs) computes the same logits."""
    ref = TorchLlama(weights, TINY, dtype=torch.float64)
    sliced, static = ref.new_cache(2), ref.new_cache(2)
    prompt = torch.randint(0, TINY.vocab, (2, 9),
                           generator=torch.Generator().manual_seed(4)).to(DEVICE)
    check_close(ref(prompt, static, static=True), ref(prompt, sliced), quiet=True)
    for i in range(2):
        new = prompt[:, i : i + 1]
        check_close(ref(new, static, static=True), ref(new, sliced), quiet=True)
    assert int(static.position) == 11


def test_model_check_rejects_a_broken_model(weights):
    """check_model must fail when the course model computes something else."""
    from course.check import WrongAnswer
    from course.llm.verify import check_model

    broken = CourseLlama(weights, TINY)
    broken.layers[1]["down"] = broken.layers[1]["down"] * 1.01  # one weight off by 1%
    ref = TorchLlama(weights, TINY, dtype=torch.float64)
    prompt = torch.randint(0, TINY.vocab, (1, 6)).to(DEVICE)
    with pytest.raises(WrongAnswer, match="prefill"):
        check_model(broken, ref, prompt=prompt, steps=1)


def test_decode_step_for_graphs_and_its_timing_keep_the_cache_consistent(weights):
    """GraphedDecodeStep (on a CPU it runs the launches a replay would) generates what plain
    decode calls generate, and time_decode rewinds the cache before every run."""
    from course.llm import GraphedDecodeStep
    from course.llm.speed import time_decode

    ours = CourseLlama(weights, TINY)
    prompt = torch.randint(0, TINY.vocab, (2, 7),
                           generator=torch.Generator().manual_seed(5)).to(DEVICE)
    plain, plain_logits = greedy_generate(ours, prompt, 4)
    cache = ours.new_cache(2)
    ours(prompt[:, :-1], cache)  # greedy_generate's prefill, split: the last token via the step
    step = GraphedDecodeStep(ours, cache)
    logits = step(prompt[:, -1:])[:, -1].float()
    check_close(logits, plain_logits[0], **TOL, quiet=True)
    assert cache.length == 7 and int(cache.position) == 7
    time_decode(lambda: step(prompt[:, -1:]), cache, 7, 3, repeats=1)
    assert cache.length == 10 and int(cache.position) == 10
    with pytest.raises(ValueError, match="KV cache full"):
        time_decode(lambda: step(prompt[:, -1:]), cache, 7, TINY.max_seq, repeats=0)
