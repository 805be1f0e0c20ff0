"""Loading an EmoNet checkpoint safely: tensors only, every parameter present with its shape,
the number of classes read from the head."""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from emonet_cli.constants import DEFAULT_NCLASS, NCLASS_CHOICES
from emonet_cli.errors import WeightsError
from emonet_cli.model import EmoNet
from emonet_cli.weights import find_candidate, resolve_weights, sha256_file

log = logging.getLogger("emonet")

MODULE_PREFIX = "module."  # left by torch.nn.DataParallel in the published files
HEAD_WEIGHT_KEY = "emo_fc_2.3.weight"  # final Linear: nclass logits + valence + arousal


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, loaded without running any code it may contain. Accepts a
    bare state dict or one wrapped as {'state_dict': ...}; strips the 'module.' prefix."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols of plain pickles; the error below says enough.
            warnings.simplefilter("ignore")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"refusing to load {path}: it holds Python objects other than tensors, and "
            "unpickling those could run code"
        ) from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for bad files
        text = str(exc).strip()
        first_sentence = text.splitlines()[0].split(". ")[0][:120] if text else ""
        detail = f"{type(exc).__name__}: {first_sentence}" if first_sentence else type(exc).__name__
        raise WeightsError(
            f"{path} is not a PyTorch checkpoint, or it is truncated or corrupt ({detail})"
        ) from None

    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise WeightsError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    not_tensors = [
        repr(key)
        for key, value in loaded.items()
        if not (isinstance(key, str) and isinstance(value, torch.Tensor))
    ]
    if not_tensors:
        raise WeightsError(
            f"{path} is not a state dict (names to tensors): {summarize(not_tensors)} "
            f"{'is' if len(not_tensors) == 1 else 'are'} not a named tensor"
        )
    state = dict(loaded)
    if state and all(key.startswith(MODULE_PREFIX) for key in state):
        state = {key[len(MODULE_PREFIX) :]: value for key, value in state.items()}
    return state


def summarize(keys: list[str], limit: int = 3) -> str:
    """The first few keys, and how many more there are, for a one-line message."""
    shown = ", ".join(keys[:limit])
    return f"{shown} (and {len(keys) - limit} more)" if len(keys) > limit else shown


def shape_text(shape: torch.Size) -> str:
    return "x".join(str(n) for n in shape) or "scalar"


def infer_nclass(state_dict: Mapping[str, torch.Tensor], source: str = "") -> int | None:
    """The number of expression classes the head was trained for; None without a head."""
    head = state_dict.get(HEAD_WEIGHT_KEY)
    if head is None:
        return None
    nclass = head.shape[0] - 2 if head.dim() == 2 else None
    if nclass not in NCLASS_CHOICES:
        raise WeightsError(
            f"{source or 'the weights'}: {HEAD_WEIGHT_KEY} has shape {shape_text(head.shape)}, "
            f"but EmoNet's head has {' or '.join(str(n + 2) for n in NCLASS_CHOICES)} outputs "
            f"({' or '.join(map(str, NCLASS_CHOICES))} classes, then valence and arousal)"
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


@dataclass
class LoadedModel:
    model: EmoNet
    nclass: int
    path: Path
    sha256: str


def load_model(
    weights: str | Path | None = None,
    nclass: int | None = None,
    offline: bool = False,
    progress: bool = True,
) -> LoadedModel:
    """Find (or fetch) the weights, load them safely and build the model. Without `nclass`,
    an explicit weights file decides it, otherwise the 8-class model is used."""
    wanted_nclass = nclass or DEFAULT_NCLASS
    found = find_candidate(wanted_nclass, weights)
    if found is None:
        path = resolve_weights(wanted_nclass, weights, offline, progress)
    else:
        path = found.path
        if found.is_named_file:
            wanted_nclass = nclass  # the file was named explicitly: its head decides
    model = build_model(load_state_dict(path), wanted_nclass, source=str(path), take=True)
    return LoadedModel(model=model, nclass=model.nclass, path=path, sha256=sha256_file(path))
