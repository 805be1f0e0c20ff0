"""The ResNet-18 weights EMOTIC's training starts from, as the reference takes them: the body
network from torchvision's ImageNet file, the context network from the Places365 project's.

Each file is taken from `--body-init` / `--context-init` when given, else from the cache folder
(models/weights.cache_dir) when its SHA-256 is the published one, else downloaded there and
checked (models/download.fetch_file: atomic, SHA-256-verified). `$EMONET_EMOTIC_BODY_INIT_URL`
and `..._SHA256` (and `CONTEXT`) replace the published address and digest (mirrors, tests).

Both layouts are read with `torch.load(weights_only=True)`: torchvision's plain state dict,
and the Places365 checkpoint (`{"state_dict": {"module.conv1.weight": ...}, "epoch": ...}`,
saved from DataParallel). The classifier (`fc`, 1000 or 365 classes) is dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from emonet_cli.errors import WeightsError
from emonet_cli.models.download import fetch_file
from emonet_cli.models.emotic.resnet import ResNet18Features
from emonet_cli.models.emotic.safeload import fitted
from emonet_cli.models.torchfile import load_weights_only, named_tensors
from emonet_cli.models.weights import cache_dir, checked_sha256, sha256_file

log = logging.getLogger("emonet")

DATA_PARALLEL_PREFIX = "module."


@dataclass(frozen=True)
class Backbone:
    """A published ResNet-18 file the training starts from."""

    part: str  # "body" or "context", as the options name it
    label: str
    filename: str
    url: str
    sha256: str
    env: str

    def expected(self) -> Backbone:
        """With the environment's URL and SHA-256 overrides applied."""
        url = os.environ.get(f"{self.env}_URL") or self.url
        sha_name = f"{self.env}_SHA256"
        sha256 = os.environ.get(sha_name)
        return replace(
            self, url=url, sha256=checked_sha256(sha256, sha_name) if sha256 else self.sha256
        )


IMAGENET = Backbone(
    "body",
    "torchvision's ImageNet ResNet-18",
    "resnet18-f37072fd.pth",
    "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
    "EMONET_EMOTIC_BODY_INIT",
)
PLACES365 = Backbone(
    "context",
    "the Places365 ResNet-18",
    "resnet18_places365.pth.tar",
    "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar",
    "2f4759217d470da2b803f8f66cd4488a066406b555a5fb95ee9a4663f9f05588",
    "EMONET_EMOTIC_CONTEXT_INIT",
)
BACKBONES = {"body": IMAGENET, "context": PLACES365}


@dataclass
class BackboneWeights:
    state: dict[str, torch.Tensor]  # ResNet18Features' keys
    path: Path
    sha256: str


def backbone_file(
    backbone: Backbone, given: str | os.PathLike | None, offline: bool, progress: bool
) -> Path:
    """The file to start `backbone` from: `given`, else the verified cached file, else the
    download (refused with `offline`)."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise WeightsError(f"--{backbone.part}-init {path}: no such file")
        return path
    expected = backbone.expected()
    target = cache_dir() / expected.filename
    if target.is_file() and sha256_file(target) == expected.sha256:
        return target
    hint = f"download it yourself and pass --{backbone.part}-init FILE"
    if offline:
        raise WeightsError(
            f"{backbone.label} ({expected.filename}) is not in {cache_dir()} and --offline "
            f"forbids downloading it from {expected.url}; {hint}"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {target.parent}: {exc.strerror or exc}") from None
    fetch_file(expected.url, target, expected.sha256, hint, progress)
    return target


def backbone_state(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    """ResNet18Features' state from a torchvision or Places365 file: the checkpoint's
    `state_dict` when there is one, DataParallel's `module.` prefix removed, `fc` dropped."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    state = named_tensors(loaded, path)
    state = {
        (k[len(DATA_PARALLEL_PREFIX) :] if k.startswith(DATA_PARALLEL_PREFIX) else k): v
        for k, v in state.items()
    }
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    with torch.device("meta"):
        model = ResNet18Features()
    return fitted(state, model, str(path), "a ResNet-18")


def load_backbone(
    part: str, given: str | os.PathLike | None = None, offline: bool = False, progress: bool = False
) -> BackboneWeights:
    """The checked ResNet-18 weights the `part` ("body" or "context") network starts from."""
    backbone = BACKBONES[part]
    path = backbone_file(backbone, given, offline, progress)
    state = backbone_state(load_weights_only(path), path)
    return BackboneWeights(state, path, sha256_file(path))
