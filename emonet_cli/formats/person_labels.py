"""What a person's label is: the word their outputs carry after the input's name
(`S.<label>.csv`, NOVA role `S.<label>`). The one rule, for the writers that name files and for
`leftovers`, which recognises an earlier run's people by it.

Two kinds: a number, `face1`, `face2`, ... (people told apart within one input), and a name
from a gallery (`alice`: the same participant in every input of a corpus). A name is a letter
then up to 63 letters, digits, `_` or `-`; never a number label (`face3`) and never a word that
outputs themselves use after the input's name (`S.valence.annotation`, `S.faces.csv`, ...):
a person so named would make their files look like another output's, on case-insensitive file
systems too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PERSON_PREFIX = "face"
NUMBERED = re.compile(rf"{PERSON_PREFIX}[1-9][0-9]*")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Every word of an output's suffix (tests/test_identity_labels.py checks that the writers'
# suffixes use no other), and of the files beside them.
RESERVED = frozenset(
    """
    faces emonet failed summary stream keypoints embedding landmarks expression valence arousal
    dominance pose annotation csv json part rendered report frames index affection anger annoyance
    anticipation aversion confidence disapproval disconnection disquietment doubt_confusion
    embarrassment engagement esteem excitement fatigue fear happiness pain peace pleasure sadness
    sensitivity suffering surprise sympathy yearning
    """.split()
)


def numbered_label(number: int) -> str:
    """The label of person number `number` without a name: `face3`."""
    return f"{PERSON_PREFIX}{number}"


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a person's name (None when it can)."""
    if not NAME.fullmatch(name):
        return "a name is a letter, then up to 63 letters, digits, '_' or '-'"
    if re.fullmatch(rf"{PERSON_PREFIX}[0-9]+", name, re.IGNORECASE):
        return f"'{PERSON_PREFIX}' and a number is how people without a name are labelled"
    if name.lower() in RESERVED:
        return "outputs use this word in their file names"
    return None


def is_person_label(text: str, names: Iterable[str] = ()) -> bool:
    """Whether `text` names a person in output file names: `face3`, or one of a gallery's
    `names` (only those: any other word may be a user's own file, `S.notes.csv`)."""
    if NUMBERED.fullmatch(text):
        return True
    return text in set(names) and name_problem(text) is None
