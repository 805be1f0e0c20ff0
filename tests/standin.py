"""Builds the deterministic stand-in checkpoint that golden.json was computed with, and the
stand-ins of the other families' published files (RBDM's .h5, EMOTIC's pickles).

The fill rule (PCG64, seed 2021, one uniform draw per value in manifest order, scaled by the
key's role) is the one documented next to the reference outputs; the published weights
cannot be downloaded in tests, so this checkpoint stands in for them.
"""

from __future__ import annotations

import contextlib
import csv
import math
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

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


# --- EMOTIC's published files -----------------------------------------------------------------
# They cannot be downloaded in tests, so stand-ins are pickled the same way: whole model objects
# saved with torch.save, naming the globals the published files name
# (torchvision.models.resnet.BasicBlock, __main__.Emotic or emotic.Emotic, torch.nn modules).
# Neither torchvision nor the reference's `emotic` module is importable here, so throwaway
# classes are registered under those module paths while the stand-ins are written.

EMOTIC_SEED = 2019  # PCG64 seed of the EMOTIC stand-ins
# torchvision ResNet's children in order (the published Sequentials number them 0..8).
RESNET_CHILDREN = (
    "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool",
)  # fmt: skip


# --- stand-ins in the published layout ------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, as its pickles name it; never run (the reference forward
    below is functional)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.stride = stride


class ResNet(nn.Module):
    """A whole torchvision ResNet-18 (with its classifier), as prepare_models.py saves it."""

    def __init__(self, classes: int = 365):
        super().__init__()
        for name, child in zip(RESNET_CHILDREN, backbone_children()):
            self.add_module(name, child)
        self.fc = nn.Linear(512, classes)


class Emotic(nn.Module):
    """The reference's fusion head, as its pickles name it (module set per stand-in)."""

    def __init__(self):
        super().__init__()
        self.num_context_features = 512
        self.num_body_features = 512
        self.fc1 = nn.Linear(1024, 256)
        self.bn1 = nn.BatchNorm1d(256)
        self.d1 = nn.Dropout(p=0.5)
        self.fc_cat = nn.Linear(256, 26)
        self.fc_cont = nn.Linear(256, 3)
        self.relu = nn.ReLU()


BasicBlock.__module__ = ResNet.__module__ = "torchvision.models.resnet"


def backbone_children() -> list[nn.Module]:
    """torchvision resnet18's children without fc: what the published Sequentials hold."""
    children = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    for in_planes, planes, stride in ((64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)):
        children.append(
            nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1))
        )
    return [*children, nn.AdaptiveAvgPool2d((1, 1))]


@contextlib.contextmanager
def published_names(emotic_module: str = "__main__"):
    """The reference's module paths, importable while stand-ins are pickled."""
    import pytest  # here, not above: tests/test_cuda.py imports this module without pytest

    with pytest.MonkeyPatch.context() as mp:
        for name in ("torchvision", "torchvision.models", "torchvision.models.resnet", "emotic"):
            mp.setitem(sys.modules, name, types.ModuleType(name))
        mp.setattr(sys.modules["torchvision.models.resnet"], "BasicBlock", BasicBlock, False)
        mp.setattr(sys.modules["torchvision.models.resnet"], "ResNet", ResNet, False)
        mp.setattr(Emotic, "__module__", emotic_module)
        mp.setattr(sys.modules[emotic_module], "Emotic", Emotic, False)
        yield


def fill(module: nn.Module, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Deterministic values for every float tensor of `module` (He-scaled weights, positive
    running variances); returns copies of its state dict, the reference's raw tensors."""
    state = module.state_dict()
    norms = {key.rsplit(".", 1)[0] for key in state if key.endswith("running_var")}
    with torch.no_grad():
        for key, tensor in state.items():
            if not tensor.is_floating_point():
                continue
            u = rng.random(tensor.numel()) * 2.0 - 1.0
            stem, leaf = key.rsplit(".", 1)
            if leaf == "running_mean":
                values = 0.1 * u
            elif leaf == "running_var":
                values = 1.0 + 0.25 * (u + 1.0)
            elif stem in norms:
                values = (0.9 + 0.1 * u) if leaf == "weight" else 0.1 * u
            elif leaf == "weight":
                values = u * np.sqrt(6.0 / np.prod(tensor.shape[1:]))  # variance 2 / fan-in
            else:
                values = 0.05 * u
            tensor.copy_(torch.from_numpy(values.reshape(tensor.shape).astype(np.float32)))
    return {key: value.clone() for key, value in module.state_dict().items()}


def write_published(folder: Path, emotic_module: str = "__main__") -> dict:
    """The four published files in `folder`; returns their raw tensors and thresholds."""
    rng = np.random.Generator(np.random.PCG64(EMOTIC_SEED))
    folder.mkdir(parents=True, exist_ok=True)
    context, body = nn.Sequential(*backbone_children()), nn.Sequential(*backbone_children())
    fusion = Emotic()
    raw = {"context": fill(context, rng), "body": fill(body, rng), "fusion": fill(fusion, rng)}
    raw["thresholds"] = (0.05 + 0.4 * rng.random(26)).astype(np.float32)
    with published_names(emotic_module):
        torch.save(context.eval(), folder / "model_context1.pth")
        torch.save(body.eval(), folder / "model_body1.pth")
        torch.save(fusion.eval(), folder / "model_emotic1.pth")
    np.save(folder / "val_thresholds.npy", raw["thresholds"])
    return raw


def save_emotic_standin(path: Path, seed: int = 2024) -> Path:
    """A converted EMOTIC file (EmoticNet's state dict, as `emonet weights convert emotic`
    writes it) with PCG64 values: scaled weights, unit-ish batch norms, scores of a few
    tenths about thresholds near 0 (some categories hold, others not), VAD about 5.5."""
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
        elif key == "fusion.fc_cont.bias":  # VAD about the middle of EMOTIC's 1-10
            values = 0.55 + 0.05 * u
        elif tensor.dim() == 1:  # batch-norm scales (the only 1-d weights) and every bias
            values = 1.0 + 0.1 * u if leaf == "weight" else 0.05 * u
        else:  # half He's gain: the eval-mode residual stacks stay about unit scale
            values = u * math.sqrt(3.0 / math.prod(shape[1:]))
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


def write_backbone_standins(folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """Stand-ins of the files EMOTIC's training starts from, in their published layouts:
    torchvision's ImageNet ResNet-18 (a plain state dict with a 1000-class `fc`) and the
    Places365 checkpoint (`state_dict` with DataParallel's `module.` names and a 365-class
    `fc`, beside `epoch`, `arch` and `best_prec1`). Random weights, batch-norm statistics
    of a fresh network."""
    from emonet_cli.models.emotic.resnet import FEATURES, ResNet18Features

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, classes in enumerate((1000, 365)):
        torch.manual_seed(seed + k)
        state = dict(ResNet18Features().state_dict())
        state["fc.weight"] = torch.randn(classes, FEATURES) * 0.01
        state["fc.bias"] = torch.zeros(classes)
        if classes == 1000:
            path = folder / "resnet18-f37072fd.pth"
            torch.save(state, path)
        else:
            path = folder / "resnet18_places365.pth.tar"
            wrapped = {f"module.{key}": value for key, value in state.items()}
            torch.save({"epoch": 90, "arch": "resnet18", "state_dict": wrapped,
                        "best_prec1": 54.74}, path)  # fmt: skip
        paths.append(path)
    return paths[0], paths[1]
