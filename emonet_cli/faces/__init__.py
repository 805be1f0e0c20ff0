"""Face boxes: the files that carry them (`files`) and the lookup of each frame's face
(`sources`)."""

from emonet_cli.faces.boxfiles import (
    BOX_FILE_SUFFIXES,
    FaceBoxes,
    boxes_from_normalised,
    parse_finite,
    read_boxes,
)
from emonet_cli.faces.lookup import NO_FACE, FaceLookup, FrameFace
from emonet_cli.faces.sources import BoxOptions, BoxSource, find_box_file, open_lookup

__all__ = [
    "BOX_FILE_SUFFIXES",
    "NO_FACE",
    "BoxOptions",
    "BoxSource",
    "FaceBoxes",
    "FaceLookup",
    "FrameFace",
    "boxes_from_normalised",
    "find_box_file",
    "open_lookup",
    "parse_finite",
    "read_boxes",
]
