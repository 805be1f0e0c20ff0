"""What EmoNet outputs and how its results are named, for every module, without torch.

The model (`model.py`), the writers, plot, render and the command line all read these; keeping
them here lets the modules that never run the network start without importing torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NCLASS_CHOICES = (5, 8)
DEFAULT_NCLASS = 8
N_LANDMARKS = 68
INPUT_SIZE = 256  # side of the aligned face crop the network sees
HEATMAP_SIZE = 64
EMBEDDING_SIZE = 256

CLASS_NAMES = {
    8: ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"),
    5: ("Neutral", "Happy", "Sad", "Surprise", "Fear"),
}
# NOVA colours (#AARRGGBB), one per class in the published order.
CLASS_COLORS = {
    "Neutral": "#FF9E9E9E",
    "Happy": "#FFFFC107",
    "Sad": "#FF2196F3",
    "Surprise": "#FFFF9800",
    "Fear": "#FF9C27B0",
    "Disgust": "#FF4CAF50",
    "Anger": "#FFF44336",
    "Contempt": "#FF795548",
}

# Colours of classes the published ones do not name (fine-tuned models), by class index.
PALETTE = (
    "#FFE91E63",
    "#FF3F51B5",
    "#FF009688",
    "#FFCDDC39",
    "#FF00BCD4",
    "#FFFF5722",
    "#FF673AB7",
    "#FF8BC34A",
    "#FF03A9F4",
    "#FF607D8B",
)
COLOR_ALIASES = {"angry": "Anger"}  # FER2013's name for the published class
COLOR_PATTERN = re.compile(r"#(?:[0-9A-Fa-f]{2})?[0-9A-Fa-f]{6}")

# How label files name a model's classes (`emonet evaluate`, `emonet finetune`): "published":
# AffectNet ids, scored by the published mapping (5 classes: ids 0-3 and 6); "affectnet":
# AffectNet id i is class i; "index": the class index, in a file of the lab's own labels.
LABEL_SCHEMES = ("published", "affectnet", "index")


def default_class_names(nclass: int) -> tuple[str, ...]:
    """The published names for 5 or 8 classes, else class0, class1, ..."""
    return CLASS_NAMES.get(nclass) or tuple(f"class{i}" for i in range(nclass))


def default_class_colors(names) -> tuple[str, ...]:
    """NOVA colours: the published class's for a published name, else the palette's."""
    by_name = {name.lower(): color for name, color in CLASS_COLORS.items()}
    by_name.update({alias: CLASS_COLORS[name] for alias, name in COLOR_ALIASES.items()})
    return tuple(
        by_name.get(name.lower(), PALETTE[i % len(PALETTE)]) for i, name in enumerate(names)
    )


def checked_class_names(names) -> tuple[str, ...]:
    """`names` as a tuple, or ValueError saying why they cannot name a model's classes: at
    least two, none empty, no commas or control characters, no two equal but for case (the
    results CSV names its columns prob_<lowercase name>)."""
    names = tuple(names)
    if len(names) < 2:
        raise ValueError(f"a model needs at least 2 classes, got {len(names)}")
    seen = set()
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"class name {name!r} is empty or has surrounding spaces")
        if "," in name or any(ord(c) < 32 for c in name):
            raise ValueError(f"class name {name!r} holds a comma or a control character")
        if name.lower() in seen:
            raise ValueError(f"class name {name!r} is given twice")
        seen.add(name.lower())
    return names


def checked_class_colors(colors, count: int) -> tuple[str, ...]:
    """`count` colours #RRGGBB or #AARRGGBB as NOVA's #AARRGGBB, or ValueError."""
    colors = tuple(colors)
    if len(colors) != count:
        raise ValueError(f"{len(colors)} colours for {count} classes")
    for color in colors:
        if not isinstance(color, str) or not COLOR_PATTERN.fullmatch(color):
            raise ValueError(f"colour {color!r} is not of the form #RRGGBB or #AARRGGBB")
    return tuple(("#FF" + c[1:] if len(c) == 7 else c).upper() for c in colors)


@dataclass(frozen=True)
class Classes:
    """A model's expression classes: names (in output order), NOVA colours, and how label
    files name them (one of LABEL_SCHEMES)."""

    names: tuple[str, ...]
    colors: tuple[str, ...]
    labels: str = "index"

    @classmethod
    def default(cls, nclass: int) -> Classes:
        """The classes of weights that carry no names: the published ones for 5 or 8."""
        names = default_class_names(nclass)
        return cls(
            names, default_class_colors(names), "published" if nclass in CLASS_NAMES else "index"
        )

    @classmethod
    def named(cls, names, colors=None, labels: str = "index") -> Classes:
        """Checked names, with `colors` (default: default_class_colors)."""
        names = checked_class_names(names)
        colors = (
            default_class_colors(names)
            if colors is None
            else checked_class_colors(colors, len(names))
        )
        if labels not in LABEL_SCHEMES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_SCHEMES)}, not {labels!r}")
        return cls(names, colors, labels)

    @property
    def nclass(self) -> int:
        return len(self.names)


# The published demo smooths the raw outputs over the current and the previous 4 frames.
SMOOTHING_WEIGHTS = (0.1, 0.1, 0.15, 0.25, 0.4)  # oldest to newest

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_MIN_FACE_CONF = 0.65  # DISCOVER's BlazeFace threshold for a face
