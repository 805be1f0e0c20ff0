"""Loading an EmoNet checkpoint safely: tensors only, every parameter present with its shape,
the number of classes read from the head, the class names from our metadata.

A checkpoint written by `emonet finetune` is the published state dict (the keys any EmoNet
loader reads) plus one more key, METADATA_KEY, holding plain data (str, int, float, bool,
None, lists and dicts): the class names and colours, how label files name the classes, the
training settings. The published loader's `load_state_dict(strict=False)` ignores it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from emonet_cli.constants import DEFAULT_NCLASS, NCLASS_CHOICES, Classes
from emonet_cli.errors import WeightsError
from emonet_cli.models.emonet.model import EmoNet
from emonet_cli.models.torchfile import check_finite, load_weights_only, named_tensors, summarize
from emonet_cli.models.weights import find_candidate, resolve_weights, sha256_file

log = logging.getLogger("emonet")

MODULE_PREFIX = "module."  # left by torch.nn.DataParallel in the published files
HEAD_WEIGHT_KEY = "emo_fc_2.3.weight"  # final Linear: nclass logits + valence + arousal
HEAD_BIAS_KEY = "emo_fc_2.3.bias"
METADATA_KEY = "emonet_cli"  # our metadata beside the tensors (see the module's docstring)


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, loaded without running any code it may contain. Accepts a
    bare state dict or one wrapped as {'state_dict': ...}; strips the 'module.' prefix and
    our metadata (see read_checkpoint)."""
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The tensors of a checkpoint (as load_state_dict) and its METADATA_KEY entry, None
    when it has none."""
    loaded = load_weights_only(path)
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    metadata = loaded.get(METADATA_KEY) if isinstance(loaded, Mapping) else None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise WeightsError(f"{path}: {METADATA_KEY!r} is not a dict of metadata")
        loaded = {key: value for key, value in loaded.items() if key != METADATA_KEY}
    state = named_tensors(loaded, path)
    if state and all(key.startswith(MODULE_PREFIX) for key in state):
        state = {key[len(MODULE_PREFIX) :]: value for key, value in state.items()}
    check_finite(state, path)
    return state, None if metadata is None else dict(metadata)


def shape_text(shape: torch.Size) -> str:
    return "x".join(str(n) for n in shape) or "scalar"


def infer_nclass(state_dict: Mapping[str, torch.Tensor], source: str = "") -> int | None:
    """The number of expression classes the head was trained for (any from 2: the published
    weights have 5 or 8, fine-tuned ones what they were trained for); None without a head."""
    head = state_dict.get(HEAD_WEIGHT_KEY)
    if head is None:
        return None
    bias = state_dict.get(HEAD_BIAS_KEY)
    nclass = head.shape[0] - 2 if head.dim() == 2 else None
    if nclass is None or nclass < 2 or (bias is not None and bias.shape != head.shape[:1]):
        bias_text = "" if bias is None else f" and {HEAD_BIAS_KEY} {shape_text(bias.shape)}"
        raise WeightsError(
            f"{source or 'the weights'}: {HEAD_WEIGHT_KEY} has shape {shape_text(head.shape)}"
            f"{bias_text}, but EmoNet's head has one output per class (at least 2), then "
            "valence and arousal, from 128 features"
        )
    return nclass


def build_model(
    state_dict: Mapping[str, torch.Tensor],
    nclass: int | None = None,
    source: str = "",
    take: bool = False,
) -> EmoNet:
    """An EmoNet in eval mode holding `state_dict`, whose every parameter and buffer must be
    present with the right shape. nclass is inferred from the head; a different `nclass` is
    refused. `source` names the weights in messages. With `take`, the model holds the very
    tensors of `state_dict` (no copy): for a state dict nobody else holds."""
    source = source or "the weights"
    inferred = infer_nclass(state_dict, source)
    if inferred is not None and nclass is not None and nclass != inferred:
        raise WeightsError(
            f"{source} holds the {inferred}-class model ({HEAD_WEIGHT_KEY} is "
            f"{shape_text(state_dict[HEAD_WEIGHT_KEY].shape)}), not the {nclass}-class model "
            f"asked for: pass --nclass {inferred} or use {nclass}-class weights"
        )
    nclass = inferred or nclass or DEFAULT_NCLASS
    # Built without memory or random initialisation (the weights replace both): of the 0.5 s
    # that building the model from a checkpoint took, initialising and copying were 80%.
    with torch.device("meta"):
        model = EmoNet(nclass)
    wanted = model.state_dict()

    missing = [key for key in wanted if key not in state_dict]
    if len(missing) == len(wanted):
        raise WeightsError(
            f"{source} holds no EmoNet weights: none of the model's {len(wanted)} parameters "
            f"and buffers are there (found e.g. {summarize(list(state_dict)) or 'nothing'})"
        )
    mismatched = [
        f"{key} ({shape_text(state_dict[key].shape)}, expected {shape_text(wanted[key].shape)})"
        for key in wanted
        if key in state_dict and state_dict[key].shape != wanted[key].shape
    ]
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"missing {summarize(missing)}")
        if mismatched:
            problems.append(f"wrong shape {summarize(mismatched)}")
        raise WeightsError(
            f"{source} does not fit the {nclass}-class EmoNet: {'; '.join(problems)}"
        )
    extra = [key for key in state_dict if key not in wanted]
    if extra:
        log.warning("%s: ignoring %d unexpected keys: %s", source, len(extra), summarize(extra))

    if take:
        # The loaded tensors become the parameters, in the model's dtypes (a float16 file too).
        state = {key: state_dict[key].to(wanted[key].dtype) for key in wanted}
        model.load_state_dict(state, strict=True, assign=True)
    else:
        model = model.to_empty(device="cpu")
        model.load_state_dict({key: state_dict[key] for key in wanted}, strict=True)
    return model.eval()


def checkpoint_classes(metadata: Mapping | None, nclass: int, source: str = "") -> Classes:
    """The classes a checkpoint's metadata names (Classes.default without metadata)."""
    if metadata is None or metadata.get("class_names") is None:
        return Classes.default(nclass)
    names = metadata["class_names"]
    try:
        classes = Classes.named(
            names, metadata.get("class_colors"), metadata.get("labels", "index")
        )
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{source or 'the weights'}: bad class metadata: {exc}") from None
    if classes.nclass != nclass:
        raise WeightsError(
            f"{source or 'the weights'}: its metadata names {classes.nclass} classes, but its "
            f"head has {nclass}"
        )
    return classes


@dataclass
class LoadedModel:
    model: EmoNet
    nclass: int
    path: Path
    sha256: str
    metadata: dict | None = None  # METADATA_KEY of the checkpoint, when it has one

    @property
    def classes(self) -> Classes:
        return self.model.classes


def load_model(
    weights: str | Path | None = None,
    nclass: int | None = None,
    offline: bool = False,
    progress: bool = True,
) -> LoadedModel:
    """Find (or fetch) the weights, load them safely and build the model. Without `nclass`,
    an explicit weights file decides it, otherwise the 8-class model is used. The published
    weights have 5 or 8 classes; other counts need a file named with `weights`."""
    wanted_nclass = nclass or DEFAULT_NCLASS
    published = wanted_nclass if wanted_nclass in NCLASS_CHOICES else DEFAULT_NCLASS
    found = find_candidate(published, weights)
    if found is not None and found.is_named_file:
        wanted_nclass = nclass  # the file was named explicitly: its head decides
    elif wanted_nclass not in NCLASS_CHOICES:
        raise WeightsError(
            f"the published weights have {' or '.join(map(str, NCLASS_CHOICES))} classes, not "
            f"{wanted_nclass}: give the weights file of a {wanted_nclass}-class model"
        )
    path = (
        found.path if found is not None else resolve_weights(published, weights, offline, progress)
    )
    state, metadata = read_checkpoint(path)
    model = build_model(state, wanted_nclass, source=str(path), take=True)
    model.classes = checkpoint_classes(metadata, model.nclass, str(path))
    return LoadedModel(
        model=model, nclass=model.nclass, path=path, sha256=sha256_file(path), metadata=metadata
    )
