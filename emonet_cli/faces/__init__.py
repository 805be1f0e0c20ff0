"""Faces: where they are, whose they are, and how they are cut out.

- `face`: what every box source hands on: `FrameFace`, and `FaceSource`, whose one method
  gives every face of each frame;
- `boxfiles`: the files that carry face boxes (SSI streams, CSV, lists) and their one reader;
- `source`: `BoxSource` (an input's faces: a box file, boxes in memory, the whole frame, the
  detector), `BoxOptions` (a run's), and the box-file and whole-frame kinds of `FaceSource`;
- `detection/`: the built-in BlazeFace detector, its kind of `FaceSource`
  (`detection.detector`) and DISCOVER's box streams (`detection.boxstream`);
- `people`: the layer on top: one person (the best face) or several (the box file's people,
  or the tracker's, `tracking`), asked for with `People.several`;
- `align`: the crops (`FaceCrop`; the published EmoNet crop).
"""

from emonet_cli.faces.boxfiles import (
    BOX_FILE_SUFFIXES,
    FaceBoxes,
    boxes_from_normalised,
    parse_finite,
    read_box_file,
    read_boxes,
)
from emonet_cli.faces.face import NO_FACE, FaceSource, FrameFace
from emonet_cli.faces.source import BoxOptions, BoxSource, find_box_file

__all__ = [
    "BOX_FILE_SUFFIXES",
    "NO_FACE",
    "BoxOptions",
    "BoxSource",
    "FaceBoxes",
    "FaceSource",
    "FrameFace",
    "boxes_from_normalised",
    "find_box_file",
    "parse_finite",
    "read_box_file",
    "read_boxes",
]
