"""Builds the deterministic stand-in checkpoint that golden.json was computed with.

The fill rule (PCG64, seed 2021, one uniform draw per value in manifest order, scaled by the
key's role) is the one documented next to the reference outputs; the published weights
cannot be downloaded in tests, so this checkpoint stands in for them.
"""

from __future__ import annotations

import csv
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from emonet_cli.models.rbdm.keras_layout import write_published_layout_standin

DATA = Path(__file__).resolve().parent / "data"
MANIFEST = DATA / "emonet_state_dict.tsv"
WEIGHT_GAIN = 0.6


def manifest_rows(nclass: int) -> list[dict[str, str]]:
    with open(MANIFEST, newline="") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if int(row["nclass"]) == nclass]


def parse_shape(text: str) -> tuple[int, ...]:
    return () if text == "scalar" else tuple(int(s) for s in text.split("x"))


def standin_state_dict(nclass: int, seed: int = 2021, prefix: str = "module.") -> dict:
    rows = manifest_rows(nclass)
    norm_stems = {
        row["key"].rsplit(".", 1)[0] for row in rows if row["key"].endswith(".running_mean")
    }
    rng = np.random.Generator(np.random.PCG64(seed))
    state = OrderedDict()
    for row in rows:
        key, shape = row["key"], parse_shape(row["shape"])
        if row["dtype"] == "int64":
            state[prefix + key] = torch.tensor(0, dtype=torch.int64)
            continue
        u = rng.random(math.prod(shape)) * 2.0 - 1.0
        stem, leaf = key.rsplit(".", 1)
        if leaf == "running_mean":
            values = 0.1 * u
        elif leaf == "running_var":
            values = 1.0 + 0.25 * (u + 1.0)
        elif stem in norm_stems:
            values = 1.0 + 0.1 * u if leaf == "weight" else 0.1 * u
        elif leaf == "weight":
            values = WEIGHT_GAIN * u * math.sqrt(3.0 / math.prod(shape[1:]))
        else:
            values = 0.05 * u
        state[prefix + key] = torch.from_numpy(values.reshape(shape).astype(np.float32))
    return state


def save_standin(path: Path, nclass: int, prefix: str = "module.") -> Path:
    torch.save(standin_state_dict(nclass, prefix=prefix), path)
    return path


def save_emotic_standin(path: Path, seed: int = 2024) -> Path:
    """A converted EMOTIC file (EmoticNet's state dict, as `emonet weights convert emotic`
    writes it) with PCG64 values: He-scaled weights, unit-ish batch norms, thresholds about
    0 so that some categories hold and others do not."""
    from emonet_cli.models.emotic.network import EmoticNet

    rng = np.random.Generator(np.random.PCG64(seed))
    state = OrderedDict()
    for key, tensor in EmoticNet().state_dict().items():
        shape, leaf = tuple(tensor.shape), key.rsplit(".", 1)[-1]
        if tensor.dtype == torch.int64:
            state[key] = torch.tensor(0, dtype=torch.int64)
            continue
        u = rng.random(math.prod(shape)) * 2.0 - 1.0
        if leaf == "running_mean" or key == "thresholds":
            values = 0.1 * u
        elif leaf == "running_var":
            values = 1.0 + 0.25 * (u + 1.0)
        elif tensor.dim() == 1:  # batch-norm scales (the only 1-d weights) and every bias
            values = 1.0 + 0.1 * u if leaf == "weight" else 0.05 * u
        else:
            values = u * math.sqrt(6.0 / math.prod(shape[1:]))
        state[key] = torch.from_numpy(values.reshape(shape).astype(np.float32))
    torch.save(state, path)
    return path


# Each model family's stand-in weights, as tests write them: a family in models.registry
# without one here fails tests/test_registry.py.
STANDIN_MAKERS = {
    "emonet": lambda folder: save_standin(folder / "emonet_8.pth", 8),
    "rbdm": lambda folder: write_published_layout_standin(folder / "rbdm_standin.h5"),
    "emotic": lambda folder: save_emotic_standin(folder / "emotic_standin.pth"),
}
