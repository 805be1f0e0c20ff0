"""Loading EMOTIC weights without running code from their pickles.

The published files (Tandon's re-implementation, github.com/Tandon-A/emotic) are whole model
objects saved with `torch.save(model)`: `model_context1.pth` and `model_body1.pth` each an
`nn.Sequential` of torchvision resnet18's children without `fc`, `model_emotic1.pth` the fusion
head (class `Emotic`, pickled from the training notebook as `__main__.Emotic`, or as
`emotic.Emotic` when trained with the repository's scripts); `val_thresholds.npy` holds the 26
thresholds. Unpickling such files normally imports and runs whatever they name.

`unpickle` reads them without running them (see there why not weights_only); this module
checks what they hold against our network and reads the thresholds with allow_pickle=False.

`convert_emotic` writes them once as a plain state dict of `EmoticNet` (tensors only, loadable
with `torch.load(weights_only=True)`); `load_emotic` takes that file or the published folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emonet_cli.errors import WeightsError
from emonet_cli.formats.fileio import atomic_open
from emonet_cli.models.emotic.lookup import (
    BODY_FILE,
    CONTEXT_FILE,
    FUSION_FILE,
    PUBLISHED_FILES,
    THRESHOLDS_FILE,
)
from emonet_cli.models.emotic.network import N_CATEGORIES, EmoticFusion, EmoticNet
from emonet_cli.models.emotic.resnet import FEATURES, ResNet18Features, from_sequential_keys
from emonet_cli.models.emotic.unpickle import (
    FUSION_CLASSES,
    RESNET,
    SEQUENTIAL,
    first_line,
    module_tensors,
    read_pickled_model,
)
from emonet_cli.models.torchfile import (
    check_finite,
    finite,
    load_weights_only,
    named_tensors,
    summarize,
)
from emonet_cli.models.weights import sha256_file


def fitted(
    state: dict[str, torch.Tensor], model: torch.nn.Module, source: str, what: str
) -> dict[str, torch.Tensor]:
    """`state` checked against `model`'s keys and shapes, as finite float32 tensors. Only a
    batch-norm step counter may be missing (old torch did not save it; eval never reads it)."""
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in wanted]
    wrong = [
        f"{k} ({'x'.join(map(str, state[k].shape))}, expected "
        f"{'x'.join(map(str, wanted[k].shape))})"
        for k in wanted
        if k in state and state[k].shape != wanted[k].shape
    ]
    if missing or extra or wrong:
        problems = [
            f"{label} {summarize(keys)}"
            for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
            if keys
        ]
        raise WeightsError(f"{source} does not hold {what}: {'; '.join(problems)}")
    out = {}
    for key, reference in wanted.items():
        value = state[key] if key in state else torch.zeros_like(reference, device="cpu")
        value = value.to(dtype=reference.dtype, device="cpu").contiguous()
        if not finite(value):
            raise WeightsError(f"{source}: damaged weights: {key} holds NaN or infinite values")
        out[key] = value
    return out


def read_backbone(path: Path) -> dict[str, torch.Tensor]:
    """The ResNet-18 state dict (torchvision names) of a published context or body file."""
    root = read_pickled_model(path)
    tensors = module_tensors(root, str(path))
    if root.pickled_class == SEQUENTIAL:
        tensors = from_sequential_keys(tensors)
    elif root.pickled_class == RESNET:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("fc.")}
    else:
        raise WeightsError(f"{path} holds a {root.pickled_class}, not a ResNet-18")
    with torch.device("meta"):
        model = ResNet18Features()
    return fitted(tensors, model, str(path), "a ResNet-18 feature extractor")


def read_fusion(path: Path) -> dict[str, torch.Tensor]:
    """The fusion head's state dict from a published `model_emotic1.pth`."""
    root = read_pickled_model(path)
    if root.pickled_class not in FUSION_CLASSES:
        raise WeightsError(f"{path} holds a {root.pickled_class}, not the EMOTIC fusion head")
    tensors = module_tensors(root, str(path))  # first: it refuses a root without state
    for name in ("num_context_features", "num_body_features"):
        # forward() reshapes its inputs with these, so they must be the ResNet-18's width.
        value = root.state.get(name, FEATURES)
        if value != FEATURES:
            raise WeightsError(f"{path}: {name} is {value!r}; the ResNet-18 gives {FEATURES}")
    with torch.device("meta"):
        model = EmoticFusion()
    return fitted(tensors, model, str(path), "the EMOTIC fusion head")


def read_thresholds(path: str | os.PathLike) -> np.ndarray:
    """The 26 category thresholds of `val_thresholds.npy`, read without unpickling."""
    path = Path(path)
    try:
        values = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise WeightsError(f"cannot read thresholds file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # object arrays (pickles), bad headers
        raise WeightsError(f"{path} is not a plain .npy array ({first_line(exc)})") from None
    if not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
        raise WeightsError(f"{path} does not hold an array of numbers")
    if values.size != N_CATEGORIES:
        raise WeightsError(f"{path} holds {values.size} thresholds, not {N_CATEGORIES}")
    values = values.reshape(-1).astype(np.float32)
    if not np.isfinite(values).all():
        raise WeightsError(f"{path}: the thresholds hold NaN or infinite values")
    return values


@dataclass
class EmoticWeights:
    """The published weights, read: three state dicts and the thresholds."""

    context: dict[str, torch.Tensor]
    body: dict[str, torch.Tensor]
    fusion: dict[str, torch.Tensor]
    thresholds: np.ndarray  # (26,) float32

    def state_dict(self) -> dict[str, torch.Tensor]:
        """As `EmoticNet().state_dict()` names them."""
        state = {}
        for prefix, part in (
            ("context.", self.context),
            ("body.", self.body),
            ("fusion.", self.fusion),
        ):
            state.update({prefix + key: value for key, value in part.items()})
        state["thresholds"] = torch.from_numpy(self.thresholds.copy())
        return state


def read_published(folder: str | os.PathLike) -> EmoticWeights:
    """The four published files of `folder`, read safely and checked."""
    folder = Path(folder)
    try:
        os.listdir(folder)  # so that an unreadable folder is not reported as an empty one
    except OSError as exc:
        raise WeightsError(
            f"cannot read the EMOTIC folder {folder}: {exc.strerror or exc}"
        ) from None
    absent = [name for name in PUBLISHED_FILES if not (folder / name).is_file()]
    if absent:
        raise WeightsError(
            f"{folder} lacks {summarize(absent, limit=4)}: the EMOTIC folder holds "
            f"{', '.join(PUBLISHED_FILES)}"
        )
    # The small files first: a refused or damaged one is found before the big ones are read.
    thresholds = read_thresholds(folder / THRESHOLDS_FILE)
    fusion = read_fusion(folder / FUSION_FILE)
    return EmoticWeights(
        context=read_backbone(folder / CONTEXT_FILE),
        body=read_backbone(folder / BODY_FILE),
        fusion=fusion,
        thresholds=thresholds,
    )


def convert_emotic(src_dir: str | os.PathLike, out_path: str | os.PathLike) -> str:
    """Write the published folder's weights as one plain state dict of EmoticNet (tensors
    only); returns the new file's SHA-256. Everything is read and checked before anything is
    written, and the file appears whole or not at all."""
    state = read_published(src_dir).state_dict()
    out_path = Path(out_path)
    try:
        # Through a file object, torch names the archive's records "archive/...", not after the
        # temporary file: the same published files give the same bytes, and the same SHA-256.
        with atomic_open(out_path, "wb") as out:
            torch.save(state, out)
    except (OSError, RuntimeError) as exc:  # torch's zip writer raises RuntimeError
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else first_line(exc)
        raise WeightsError(f"cannot write {out_path}: {detail}") from None
    return sha256_file(out_path)


def read_converted(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a file written by convert_emotic, loaded with weights_only=True."""
    hint = f"a published EMOTIC file is read from its folder (with {', '.join(PUBLISHED_FILES)})"
    state = named_tensors(load_weights_only(path, refused_hint=hint), path)
    check_finite(state, path)
    return state


def build_emotic(state: dict[str, torch.Tensor], source: str, checked: bool = False) -> EmoticNet:
    """An EmoticNet in eval mode holding `state`, whose every key must be present with its
    shape and finite values (`checked`: read_published has made sure already)."""
    with torch.device("meta"):  # no memory or random initialisation: the weights replace both
        model = EmoticNet()
    if not checked:
        state = fitted(state, model, source, "the EMOTIC network")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


def load_emotic(path_or_dir: str | os.PathLike) -> EmoticNet:
    """EMOTIC from a file written by convert_emotic, or from the folder of published files."""
    path = Path(path_or_dir)
    if path.is_dir():
        return build_emotic(read_published(path).state_dict(), str(path), checked=True)
    return build_emotic(read_converted(path), str(path))
