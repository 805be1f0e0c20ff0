"""Galleries from what a user hands over: a people file, or a folder of photos found with the
detector and described; and the people of a run saved for later runs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.faces.detection.detector import detected_faces
from emonet_cli.faces.identity.gallery import Gallery, merged, photo_gallery, read_gallery
from emonet_cli.faces.identity.gallery import write_gallery as _write


def open_gallery(path: Path, describer, settings) -> Gallery:
    """The gallery of a people file, or of a folder of photos (one face each, found by the
    detector of `settings`); a FormatError naming the file for anything else."""
    if path.is_dir():
        return photo_gallery(path, lambda photo: _photo_descriptor(photo, describer, settings),
                             describer.model)  # fmt: skip
    return read_gallery(path, describer.model)


def _photo_descriptor(photo: Path, describer, settings) -> np.ndarray:
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise FormatError(f"{photo}: cannot read the photo")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    size = (rgb.shape[1], rgb.shape[0])
    found = detected_faces(settings.detector().detect([rgb])[0], size, settings.min_score)
    if not found:
        raise FormatError(f"{photo}: no face found (one person per photo)")
    best = max(found, key=lambda face: face.conf)
    descriptor = describer.describe(rgb, best.box)
    if descriptor is None:
        raise FormatError(f"{photo}: the face is too small or too blurred to describe")
    return descriptor


def save_people(path: Path, reports: Iterable[object]) -> Path | None:
    """Write the people the `reports` of a run described (their `described`: name and
    descriptors) as a gallery; None when none was described."""
    from emonet_cli.faces.identity.descriptor import MODEL

    people = [pair for report in reports for pair in getattr(report, "described", None) or ()]
    if not people:
        return None
    return _write(path, merged(MODEL, people, str(path)))
