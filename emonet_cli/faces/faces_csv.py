"""`S.faces.csv`: the overview of every person's face, frame by frame (it reads back as box
input through `boxfiles.read_people_boxes`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emonet_cli.faces.lookup import face_id
from emonet_cli.formats.fileio import PendingFile, WrappedWriter
from emonet_cli.formats.streams import format_float

FACES_SUFFIX = ".faces.csv"
FACES_COLUMNS = ("frame", "time", "face", "x1", "y1", "x2", "y2", "conf")


class FacesCsvWriter(WrappedWriter):
    """`S.faces.csv`: one row per face and frame (frame, time, face number, box corners in
    pixels, confidence), in frame order; written atomically."""

    def __init__(self, path: Path):
        self.paths = [path]
        self._writer = PendingFile(path, binary=False)
        self._csv = csv.writer(self._writer.file, lineterminator="\n")
        self._csv.writerow(FACES_COLUMNS)

    def add(
        self,
        frame: np.ndarray,
        time: np.ndarray,
        label: np.ndarray,
        boxes: np.ndarray,
        conf: np.ndarray,
    ) -> None:
        """Rows of faces (any order within the call; calls in frame order)."""
        ids = np.array([face_id(name) for name in label], dtype=np.int64)
        for i in np.lexsort((ids, frame)):
            self._csv.writerow(
                [
                    int(frame[i]),
                    f"{time[i]:.6f}",
                    int(ids[i]),
                    *(format_float(v) for v in boxes[i]),
                    format_float(conf[i]),
                ]
            )
