"""Faces: where they are and how they are cut out.

- `boxfiles`: the files that carry face boxes (SSI streams, CSV, lists);
- `lookup`: what every box source hands on (`FrameFace`, `FaceLookup`, `PeopleLookup`);
- `sources`: `BoxSource` and `BoxOptions`, and the lookup of one face per frame;
- `people`, `faces_csv`, `tracking`: several people per input, `S.faces.csv`, the tracker;
- `detection/`: the built-in BlazeFace detector and DISCOVER's box streams;
- `align`: the crops (`FaceCrop`; the published EmoNet crop).
"""

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
