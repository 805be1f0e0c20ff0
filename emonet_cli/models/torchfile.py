"""Reading a weights file with `torch.load(weights_only=True)`: tensors and plain data only,
so that no file can run code, with every failure one line naming the file. Every family that
loads a PyTorch state dict (EmoNet's checkpoints, EMOTIC's converted file) reads it here."""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from emonet_cli.errors import WeightsError


def summarize(keys: list[str], limit: int = 3) -> str:
    """The first few keys, and how many more there are, for a one-line message."""
    shown = ", ".join(keys[:limit])
    return f"{shown} (and {len(keys) - limit} more)" if len(keys) > limit else shown


def first_sentence(exc: BaseException) -> str:
    """The exception's type and the first sentence of its message, short enough for a line."""
    text = str(exc).strip()
    sentence = text.splitlines()[0].split(". ")[0][:120] if text else ""
    return f"{type(exc).__name__}: {sentence}" if sentence else type(exc).__name__


def load_weights_only(path: str | os.PathLike, refused_hint: str = "") -> object:
    """What `path` holds, loaded on the CPU with weights_only=True. A file holding other Python
    objects is refused (`refused_hint` says what to do instead); unreadable, truncated and
    corrupt files are WeightsErrors too."""
    path = Path(path)
    try:
        file = open(path, "rb")
    except OSError as exc:  # missing, a folder, no permission: the file system's answer
        raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    # Opened here, so that an OSError of torch's reader (EINVAL of a cut zip) means corrupt.
    with file, warnings.catch_warnings():
        # torch warns about pickle protocols of plain pickles; the error below says enough.
        warnings.simplefilter("ignore")
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise WeightsError(
                f"refusing to load {path}: it holds Python objects other than tensors, and "
                f"unpickling those could run code{'; ' + refused_hint if refused_hint else ''}"
            ) from None
        except Exception as exc:  # torch raises RuntimeError, EOFError, OSError... for bad files
            raise WeightsError(
                f"{path} is not a PyTorch checkpoint, or it is truncated or corrupt "
                f"({first_sentence(exc)})"
            ) from None


def named_tensors(loaded: object, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """`loaded` as a state dict (names to tensors), or the one-line error saying what it is."""
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
    return dict(loaded)


def finite(tensor: torch.Tensor) -> bool:
    """Whether a tensor holds no NaN or infinity (an empty one holds neither)."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    # min and max propagate NaN and show infinities, in one pass without a mask to allocate.
    return bool(torch.isfinite(torch.stack(torch.aminmax(tensor))).all())


def check_finite(state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Refuse weights holding NaN or infinite values, naming them: caught here, the message
    names the weights; a run would otherwise fail on its first input, as if it were to blame."""
    damaged = [key for key, value in state.items() if not finite(value)]
    if damaged:
        raise WeightsError(
            f"{path}: damaged weights: {summarize(damaged)} "
            f"{'holds' if len(damaged) == 1 else 'hold'} NaN or infinite values"
        )
