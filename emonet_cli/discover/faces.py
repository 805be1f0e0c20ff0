"""Where the module's faces come from. `box_source_for` is the one place that decides: the
session's BlazeFace stream (`face_bb`) when the request gives one, else the built-in
detector."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emonet_cli.discover.spec import FACE_BOXES_ID
from emonet_cli.errors import InputError
from emonet_cli.faces import BoxSource, boxes_from_normalised
from emonet_cli.faces.detection.detector import DetectionSettings
from emonet_cli.faces.on_frame import check_declared_size, declared_size
from emonet_cli.media.frames import MediaInfo


def box_source_for(
    inputs: Mapping[str, Any], info: MediaInfo, detection: DetectionSettings | None = None
) -> BoxSource:
    """The faces of the video described by `info`: the `face_bb` input (a DISCOVER SSIStream
    of normalised BlazeFace rows), matched to frames by time; without it, the built-in
    detector's with `detection` (DISCOVER's blazeface defaults, what its module would have
    written into `face_bb`; several faces tracked when its max_faces is above 1)."""
    stream = inputs.get(FACE_BOXES_ID)
    if stream is None:
        return BoxSource(detect=detection or DetectionSettings())
    values = getattr(stream, "data", None)
    sample_rate = getattr(stream.meta_data, "sample_rate", None)
    source = Path(getattr(stream.meta_data, "file_path", None) or FACE_BOXES_ID)
    if values is None or not sample_rate:
        raise InputError(f"{source}: the {FACE_BOXES_ID} input holds no box samples")
    declared = getattr(stream.meta_data, "custom_meta", None) or {}
    check_declared_size(source, declared_size(declared.get("size")), (info.width, info.height))
    boxes = boxes_from_normalised(
        np.asarray(values), float(sample_rate), (info.width, info.height), source
    )
    return BoxSource(boxes=boxes)
