"""Recording benchmark results with what is needed to trust them later.

A number without its device, date and software versions cannot be compared with anything. Each
benchmark writes one JSON file under ``benchmarks/results/<device>/``; the device folder keeps
results from different machines apart.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import re
from pathlib import Path

from .env import configure

RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def device_slug(name: str) -> str:
    """A folder name for a device: 'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def environment_info() -> dict:
    """Device, date and library versions for the record."""
    import torch

    env = configure()
    info = {
        "device": env.device_name,
        "device_kind": env.device,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:  # Triton has no wheels outside Linux
        info["triton"] = None
    if env.on_gpu:
        info["cuda"] = torch.version.cuda
        info["sm_count"] = torch.cuda.get_device_properties(0).multi_processor_count
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def record(
    name: str, rows: list[dict], *, notes: str = "", directory: Path | None = None, **fields
) -> Path:
    """Write ``rows`` (one dict per measurement) with the environment to ``<device>/<name>.json``.

    Extra keyword ``fields`` (a measured ceiling, say) are stored beside the rows.
    """
    info = environment_info()
    folder = (directory or RESULTS_DIR) / device_slug(info["device"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {"benchmark": name, **info, "notes": notes, **fields, "rows": rows}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
