"""dlib's face descriptor (its ResNet, `dlib_face_recognition_resnet_model_v1`, public domain),
aligned by dlib's 5-point shape predictor (`shape_predictor_5_face_landmarks`, CC0), both from
the `face-recognition-models` package, run by `dlib-bin`'s prebuilt dlib. Loaded on first use;
the only module of the package that imports dlib.

From a detector box: dlib's shape predictor expects the box of dlib's own face detector, which
is smaller than BlazeFace's. The square of 0.8 times the larger side of the box, about the box's
centre, is that box: on the suite's real faces (the expression photos, single_face.jpg, the
astronaut, 12 frames of WolfgangLanger_Pexels.mp4 and 6 of single_face.mp4) the descriptors
from it are 0.042 on average (at most 0.084) from those from dlib's detector box, where the
plain BlazeFace box gives up to 0.22. (Scales 0.7 to 0.9 and shifts of 5% up or down were
tried; 0.8 centred is the best or within 0.004 of it.)

A face is not described (None: position decides for it) when its box is under MIN_SIDE pixels
or its aligned chip has almost no detail (Laplacian variance under MIN_DETAIL: a heavy blur):
there, descriptors move 0.3 and more from the same face's sharp ones, as far as other people's.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import EmonetError
from emonet_cli.faces.identity import INSTALL_COMMAND
from emonet_cli.media.frames import Frame

MODEL = {"name": "dlib_face_recognition_resnet_model_v1", "version": 1, "size": 128}
CHIP_SIZE = 150  # what the network takes (dlib.get_face_chip's default)
CHIP_PADDING = 0.25
BOX_SCALE = 0.8  # dlib's face box in BlazeFace's (see the module docstring)
MIN_SIDE = 48.0  # pixels: smaller boxes are not described
MIN_DETAIL = 15.0  # Laplacian variance of the grey chip below which a face is too blurred
CONTEXT = 0.6  # box sides of picture kept around a face for the shape predictor
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")


class IdentityUnavailable(EmonetError):
    """The identity extra is not installed (or its model files are missing)."""


def _model_folder() -> Path:
    # face_recognition_models' own import needs pkg_resources (setuptools); its files do not.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityUnavailable(f"face-recognition-models is not installed ({INSTALL_COMMAND})")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise IdentityUnavailable(f"{folder / missing[0]} is missing ({INSTALL_COMMAND})")
    return folder


class FaceDescriber:
    """Describes faces: 128 numbers per face, near for the same person (see the module
    docstring). Raises IdentityUnavailable when dlib or its models are not installed."""

    model = MODEL

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise IdentityUnavailable(f"dlib is not installed ({INSTALL_COMMAND})") from None
        folder = _model_folder()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(folder / MODEL_FILES[0]))
        self._network = dlib.face_recognition_model_v1(str(folder / MODEL_FILES[1]))
        # One describer per process, shared by the inputs decoded at once (in_flight): dlib's
        # network keeps its buffers in itself.
        self._lock = threading.Lock()

    def describe(self, frame: Frame | np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The descriptor (128 float32) of the face in `box` (x1, y1, x2, y2 pixels) of a
        frame (or an RGB image); None for a face too small or too blurred to describe."""
        with self._lock:
            chip = self.chip(frame, box)
            if chip is None:
                return None
            return np.asarray(self._network.compute_face_descriptor(chip), dtype=np.float32)

    def chip(self, frame: Frame | np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The face aligned as dlib's network wants it (150x150 RGB), or None (see describe)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1)
        if not np.isfinite(side) or side < MIN_SIDE:
            return None
        # Only the face's surroundings are handed to dlib (a copy of a 720p frame costs more
        # than the shape predictor).
        bgr = frame.bgr if isinstance(frame, Frame) else None
        image = bgr if bgr is not None else getattr(frame, "image", frame)
        height, width = image.shape[:2]
        margin = CONTEXT * side
        left, top = max(int(x1 - margin), 0), max(int(y1 - margin), 0)
        right, bottom = min(int(x2 + margin) + 1, width), min(int(y2 + margin) + 1, height)
        if right - left < 2 or bottom - top < 2:
            return None
        crop = image[top:bottom, left:right]
        # Only the crop is turned to RGB (the decoder's frames are BGR).
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if bgr is not None else crop
        crop = np.ascontiguousarray(crop)
        cx, cy, half = (x1 + x2) / 2 - left, (y1 + y2) / 2 - top, BOX_SCALE * side / 2
        rect = self._dlib.rectangle(
            round(cx - half), round(cy - half), round(cx + half), round(cy + half)
        )
        shape = self._shape(crop, rect)
        chip = self._dlib.get_face_chip(crop, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
        if cv2.Laplacian(grey, cv2.CV_64F).var() < MIN_DETAIL:
            return None
        return chip


@functools.lru_cache(maxsize=1)
def load_describer() -> FaceDescriber:
    """The describer (once per process), or IdentityUnavailable saying what to install."""
    return FaceDescriber()
