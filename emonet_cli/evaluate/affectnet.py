"""AffectNet's label vocabulary and the published rules for scoring EmoNet on it: which
AffectNet expression each model class is scored against, and the automatic cleaning.

Pure rules on ids and numbers, without file access or torch; `labels` applies them to rows.
"""

from __future__ import annotations

import math

AFFECTNET_EXPRESSIONS = (
    "Neutral",
    "Happy",
    "Sad",
    "Surprise",
    "Fear",
    "Disgust",
    "Anger",
    "Contempt",
    "None",
    "Uncertain",
    "No-Face",
)
MISSING_AFFECT = -2.0  # AffectNet's valence / arousal for faces without them

# AffectNet ids scored by each model, in the order of its classes (the published loader).
SCORED_EXPRESSIONS = {8: (0, 1, 2, 3, 4, 5, 6, 7), 5: (0, 1, 2, 3, 6)}
FIVE_CLASS_NOTE = (
    "class 4 of the 5-class model is scored against AffectNet's Anger (id 6), as in the "
    "published loader, although the model's class list calls it Fear"
)


def class_index(expression: int, nclass: int) -> int | None:
    """The model class an AffectNet id is scored as, or None if the model does not score it.
    The 5-class model keeps neutral, happy, sad, surprise and anger, anger becoming class 4."""
    scored = SCORED_EXPRESSIONS[nclass]
    return scored.index(expression) if expression in scored else None


def class_names(nclass: int) -> list[str]:
    """The AffectNet name of the label each model class is scored against."""
    return [AFFECTNET_EXPRESSIONS[expression] for expression in SCORED_EXPRESSIONS[nclass]]


def fails_cleaning(expression: int, valence: float, arousal: float) -> bool:
    """The published automatic cleaning: drops faces whose valence and arousal contradict
    their expression label, or are too weak for it."""
    intensity = math.sqrt(valence**2 + arousal**2)
    if expression == 0:  # neutral
        return intensity >= 0.2
    if expression == 1:  # happy
        return valence <= 0 or intensity <= 0.2
    if expression == 2:  # sad
        return valence >= 0 or intensity <= 0.2
    if expression == 3:  # surprise
        return arousal <= 0 or intensity <= 0.2
    if expression == 4:  # fear
        return not (arousal >= 0 and valence <= 0) or intensity <= 0.2
    if expression == 5:  # disgust
        return valence >= 0 or intensity <= 0.3
    if expression == 6:  # anger
        return arousal <= 0 or intensity <= 0.2
    if expression == 7:  # contempt
        return valence >= 0 or intensity <= 0.2
    raise ValueError(f"no cleaning rule for AffectNet expression {expression}")
