"""Reading whole-model pickles without running code from them.

Pickles of `torch.save(model)` name the classes of the model's modules, and unpickling them
normally imports and runs whatever they name. `torch.load(weights_only=True)` refuses such
files, and allowlisting their classes there would need those classes importable: for EMOTIC,
torchvision and the reference's `emotic` module, which are not (nor wanted).

So these files go through our own unpickler (torch.load's `pickle_module`): it hands out a
fixed set of torch's tensor rebuilders, and for each allowlisted module class an inert
`PickledObject` that only keeps the state the pickle gives it; any other global (os.system,
builtins.eval, ...) is refused before it is looked up, and so is setting state on anything
but a `PickledObject`. `module_tensors` then reads the tensors out of the collected
`_parameters` and `_buffers`, as a state dict.
"""

from __future__ import annotations

import os
import pickle
import types
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from emonet_cli.errors import WeightsError

SEQUENTIAL = "torch.nn.modules.container.Sequential"
RESNET = "torchvision.models.resnet.ResNet"  # a whole torchvision ResNet (fc is dropped)
FUSION_CLASSES = ("__main__.Emotic", "emotic.Emotic")
MODULE_CLASSES = frozenset(
    {
        SEQUENTIAL,
        RESNET,
        "torchvision.models.resnet.BasicBlock",
        "torch.nn.modules.conv.Conv2d",
        "torch.nn.modules.batchnorm.BatchNorm1d",
        "torch.nn.modules.batchnorm.BatchNorm2d",
        "torch.nn.modules.activation.ReLU",
        "torch.nn.modules.pooling.MaxPool2d",
        "torch.nn.modules.pooling.AdaptiveAvgPool2d",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.dropout.Dropout",
        *FUSION_CLASSES,
    }
)
# What pickles of tensors and modules call (torch's own loader resolves the storage types).
CALLABLES = {
    "collections.OrderedDict": OrderedDict,
    "__builtin__.set": set,  # protocol 2 writes builtins under their Python 2 name
    "builtins.set": set,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
}


class RefusedPickle(pickle.UnpicklingError):
    """A pickle asking for something the published files do not hold."""


class PickledObject:
    """An inert stand-in for an object of an allowlisted class: it keeps the state the pickle
    gives it (a module's `__dict__`: `_modules`, `_parameters`, `_buffers`, settings)."""

    pickled_class = ""
    # Old-format files carry each module class's source, which torch compares with the
    # class's own; where they differ and this is true, it writes a patch file to disk.
    dump_patches = False

    def __setstate__(self, state) -> None:
        self.state = state


_STANDINS: dict[str, type] = {}


def standin_class(qualified: str) -> type:
    if qualified not in _STANDINS:
        _STANDINS[qualified] = type(
            qualified.rsplit(".", 1)[1], (PickledObject,), {"pickled_class": qualified}
        )
    return _STANDINS[qualified]


def _load_build(unpickler: pickle._Unpickler) -> None:
    # BUILD sets attributes; on a function or class that could rewire it (`__defaults__`...).
    state = unpickler.stack.pop()
    target = unpickler.stack[-1]
    if not isinstance(target, PickledObject):
        raise RefusedPickle(f"it sets the state of a {type(target).__name__}")
    target.__setstate__(state)


class SafeUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (its opcodes can be overridden) with an allowlist of globals."""

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: _load_build}

    def find_class(self, module: str, name: str):
        qualified = f"{module}.{name}"
        if qualified in CALLABLES:
            return CALLABLES[qualified]
        if qualified in MODULE_CLASSES:
            return standin_class(qualified)
        raise RefusedPickle(f"it names {qualified}, which no published EMOTIC file holds")


def _safe_load(file, **kwargs):
    return SafeUnpickler(file, **kwargs).load()


# What torch.load takes as `pickle_module` (it reads Unpickler, load and __name__).
SAFE_PICKLE = types.ModuleType("emonet_cli_emotic_safe_pickle")
SAFE_PICKLE.Unpickler = SafeUnpickler
SAFE_PICKLE.load = _safe_load
SAFE_PICKLE.UnpicklingError = pickle.UnpicklingError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    detail = text.splitlines()[0][:160] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def read_pickled_model(path: str | os.PathLike) -> PickledObject:
    """The object tree of a whole-model pickle, unpickled with SafeUnpickler."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # torch warns that it cannot check our stand-ins' source (old-format files).
            warnings.simplefilter("ignore")
            root = torch.load(
                path, map_location="cpu", pickle_module=SAFE_PICKLE, weights_only=False
            )
    except RefusedPickle as exc:
        raise WeightsError(
            f"refusing to load {path}: {exc} (unpickling it could run code)"
        ) from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
    except RuntimeError as exc:
        if "explicit pickle_module" in str(exc):  # TORCH_FORCE_WEIGHTS_ONLY_LOAD is set
            raise WeightsError(
                f"cannot read {path}: TORCH_FORCE_WEIGHTS_ONLY_LOAD forbids its safe loader; unset "
                "it, or load the file converted with convert_emotic"
            ) from None
        raise WeightsError(
            f"{path} is not a PyTorch file, or it is corrupt ({first_line(exc)})"
        ) from None
    except Exception as exc:  # truncated zips, pickles of the wrong shape...
        raise WeightsError(
            f"{path} is not a PyTorch file, or it is corrupt ({first_line(exc)})"
        ) from None
    if not isinstance(root, PickledObject):
        raise WeightsError(f"{path} holds a {type(root).__name__}, not a pickled EMOTIC model")
    return root


def module_tensors(root: PickledObject, source: str) -> dict[str, torch.Tensor]:
    """The state dict a module tree would give: parameters and persistent buffers, by path."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: PickledObject, prefix: str) -> None:
        state = node.state if isinstance(getattr(node, "state", None), dict) else None
        if state is None:
            raise WeightsError(f"{source}: {prefix or 'the model'} was pickled without its state")
        tables = {key: state.get(key) or {} for key in ("_parameters", "_buffers", "_modules")}
        if not all(isinstance(table, dict) for table in tables.values()):
            raise WeightsError(f"{source}: {prefix or 'the model'} has a damaged module state")
        skipped = state.get("_non_persistent_buffers_set") or set()
        for kind in ("_parameters", "_buffers"):
            for name, value in tables[kind].items():
                if value is None or (kind == "_buffers" and name in skipped):
                    continue
                if not isinstance(value, torch.Tensor):
                    raise WeightsError(f"{source}: {prefix}{name} is not a tensor")
                tensors[prefix + name] = value.detach()
        for name, child in tables["_modules"].items():
            if child is None:
                continue
            if not isinstance(child, PickledObject):
                raise WeightsError(f"{source}: {prefix}{name} is not a module")
            walk(child, f"{prefix}{name}.")

    walk(root, "")
    return tensors
