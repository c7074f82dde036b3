"""Capstone: a Llama 3 decoder that runs only on the course's own kernels.

* :mod:`.config` - the model's sizes (:data:`LLAMA_3_2_1B`, :data:`TINY`) and RoPE tables;
* :mod:`.weights` - weight names and shapes, deterministic random weights;
* :mod:`.reference` - the model in plain PyTorch (:class:`TorchLlama`), the reference;
* :mod:`.model` - the model on the course's Triton kernels (:class:`CourseLlama`);
* :mod:`.cache` - the KV cache; :mod:`.generate` - greedy generation, CUDA-graph decode steps;
* :mod:`.loader` - real Llama weights from a local safetensors folder;
* :mod:`.verify` - the checks (each kernel alone, the whole model); :mod:`.speed` and
  :mod:`.plots` - timing, the per-kernel breakdown and its chart.
"""

from .cache import KVCache
from .config import LLAMA_3_2_1B, TINY, LlamaConfig, rope_tables
from .generate import GraphedDecodeStep, compare_generations, greedy_generate
from .loader import load_checkpoint, save_checkpoint
from .model import CourseLlama
from .reference import TorchLlama
from .weights import random_weights

__all__ = [
    "CourseLlama", "GraphedDecodeStep", "KVCache", "LLAMA_3_2_1B", "LlamaConfig", "TINY",
    "TorchLlama", "compare_generations", "greedy_generate", "load_checkpoint", "random_weights",
    "rope_tables", "save_checkpoint",
]  # fmt: skip
