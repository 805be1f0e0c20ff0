"""The model families emonet-cli runs, one entry each: what the network is, how its weights are
loaded, how its input is cut from a frame, what it outputs, and its published weights.

Every command, the Python API, the DISCOVER module and the benchmark pick a family here by
name (`--model NAME`); nothing else names a family's modules. Adding a family is one package
under `models/` (its network, its loader and its `Predictor`) plus one entry in `FAMILIES`.
The loader and the predictor are named by import path, so that this table loads no torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emonet_cli.errors import EmonetError
from emonet_cli.faces.align import PUBLISHED_CROP, ModelInput
from emonet_cli.models.emotic.lookup import EMOTIC_LOOKUP
from emonet_cli.models.emotic.metrics import CATEGORIES as EMOTIC_CATEGORIES
from emonet_cli.models.emotic.preprocess import EMOTIC_VAD_MAX, EMOTIC_VAD_MIN, PERSON_CROP
from emonet_cli.models.published import EMONET_LOOKUP, PUBLISHED, PublishedWeights, WeightsLookup
from emonet_cli.models.rbdm.preprocess import RBDM_CROP

# What a family's predictions can hold, per face or person; each family names those it gives.
# `categories`: scores of several labels that can hold at once, each with its threshold.
RESULT_KINDS = (
    "expression",
    "valence",
    "arousal",
    "dominance",
    "categories",
    "landmarks",
    "embedding",
)


@dataclass(frozen=True)
class ModelFamily:
    """One model family.

    `loader` names a function (weights, nclass, offline, progress) -> a loaded model with
    `model`, `path` and `sha256`; `predictor` names the class that runs a loaded model on
    batches of what `crop` cuts, as Predictor(model, device, precision) (see
    models.predictions). `lookup` says how its weights are found (`emonet weights`,
    `--weights`)."""

    name: str
    title: str
    reference: str
    loader: str
    predictor: str
    crop: ModelInput
    outputs: tuple[str, ...]
    weights: Mapping[int, PublishedWeights]  # the published files, by expression classes
    trainable: bool = False  # `emonet finetune` can adapt it
    # What the boxes of a box file are taken to frame (align.BOX_KINDS) unless the user says.
    file_boxes: str = "face"
    categories: tuple[str, ...] = ()  # the names of its `categories` scores, in output order
    # Its own scale of valence, arousal (and dominance), written beside the [-1, 1] values.
    native_scale: tuple[float, float] | None = None
    # How its weights are found, when more than `weights` and $EMONET_{NAME}_WEIGHTS says it.
    weights_lookup: WeightsLookup | None = None

    @property
    def lookup(self) -> WeightsLookup:
        """How its weights file is found: `weights_lookup`, else its `weights` and the variable
        $EMONET_{NAME}_WEIGHTS (a file or folder), named in messages by the title's first part."""
        if self.weights_lookup is not None:
            return self.weights_lookup
        label = self.title.split(",")[0]
        return WeightsLookup(self.name, label, self.weights, f"EMONET_{self.name.upper()}_WEIGHTS")

    def load(self, weights=None, nclass=None, offline: bool = False, progress: bool = True):
        """The family's weights found (or fetched), checked and built into its network."""
        return _imported(self.loader)(weights, nclass, offline, progress)

    def predictor_for(self, loaded, device="auto", precision: str = "auto") -> Any:
        """A predictor running `loaded` (what `load` returned) on `device`."""
        return _imported(self.predictor)(loaded.model, device, precision)

    def gives(self, kind: str) -> bool:
        return kind in self.outputs


def _imported(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


EMONET = ModelFamily(
    name="emonet",
    title="EmoNet, the published stacked-hourglass network",
    reference="Toisoul, Kossaifi, Bulat, Tzimiropoulos, Pantic, Nature Machine Intelligence 2021",
    loader="emonet_cli.models.emonet.checkpoint:load_model",
    predictor="emonet_cli.models.emonet.inference:Predictor",
    crop=PUBLISHED_CROP,
    outputs=("expression", "valence", "arousal", "landmarks", "embedding"),
    weights=PUBLISHED,
    trainable=True,
    weights_lookup=EMONET_LOOKUP,
)

RBDM_FILE = "MobileNetV2_RMSE_E060_L10.8965_RMSE0.3812.h5"
RBDM = ModelFamily(
    name="rbdm",
    title="RBDM, DISCOVER's multitask MobileNetV2 (8 expressions, valence, arousal)",
    reference="Schiller, Huber, Dietz, Andre, Relevance-based data masking, "
    "Frontiers in Computer Science 2020",
    loader="emonet_cli.models.rbdm.inference:load_rbdm",
    predictor="emonet_cli.models.rbdm.inference:RbdmPredictor",
    crop=RBDM_CROP,
    outputs=("expression", "valence", "arousal"),
    weights={
        8: PublishedWeights(
            nclass=8,
            filename=RBDM_FILE,
            url="https://github.com/hcmlab/discover-modules/releases/download/rbdm-weights-v1/"
            + RBDM_FILE,
            sha256="83cf14709c7919ce97b181534342402e655b4e8b2a7e86261a08cced90e41576",
        )
    },
    trainable=False,
)

EMOTIC = ModelFamily(
    name="emotic",
    title="EMOTIC, emotion in context: 26 categories, valence, arousal, dominance",
    reference="Kosti, Alvarez, Recasens, Lapedriza, Context based emotion recognition using "
    "EMOTIC dataset, TPAMI 2019 (weights of Tandon's PyTorch re-implementation)",
    loader="emonet_cli.models.emotic.inference:load_emotic_family",
    predictor="emonet_cli.models.emotic.inference:EmoticPredictor",
    crop=PERSON_CROP,
    outputs=("valence", "arousal", "dominance", "categories"),
    weights={},  # published on a file-sharing drive only: converted by the user
    trainable=True,  # from the dataset's Annotations.mat (finetune/emotic_train.py)
    weights_lookup=EMOTIC_LOOKUP,
    file_boxes="person",
    categories=EMOTIC_CATEGORIES,
    native_scale=(EMOTIC_VAD_MIN, EMOTIC_VAD_MAX),
)

FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (EMONET, RBDM, EMOTIC)}
DEFAULT_FAMILY = EMONET.name


def family(name: str) -> ModelFamily:
    """The family called `name`, or the one-line error naming those there are."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise EmonetError(f"unknown model {name!r}: use one of {', '.join(FAMILIES)}") from None


def families_giving(*kinds: str) -> tuple[str, ...]:
    """The families whose outputs include every one of `kinds`."""
    return tuple(name for name, entry in FAMILIES.items() if set(kinds) <= set(entry.outputs))


def weights_lookups() -> dict[str, WeightsLookup]:
    """How every family's weights are found, by name, for `emonet weights`."""
    return {name: entry.lookup for name, entry in FAMILIES.items()}


def trainable_families() -> tuple[str, ...]:
    return tuple(name for name, entry in FAMILIES.items() if entry.trainable)
