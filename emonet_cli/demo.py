"""`make demo`: a generated sample video with its BlazeFace box stream, analysed end to end.

The sample is scikit-image's astronaut photo moving and zooming across the frame, with one
second in which no face is shown (the detector then repeats its last box with confidence 0,
as DISCOVER's BlazeFace module does).

    python -m emonet_cli.demo [FOLDER] [extra analyze options]
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np
import skimage.data

from emonet_cli.formats.fileio import atomic_path
from emonet_cli.formats.streams import write_stream
from emonet_cli.media.opencv_names import opencv_name

# The astronaut's face in the 512x512 photo, x1 y1 x2 y2 in pixels.
ASTRONAUT_FACE_BOX = (170.0, 58.0, 272.0, 178.0)
BACKGROUND = (40, 44, 52)


@dataclass
class Sample:
    video: Path
    boxes: Path
    frames: int
    fps: float
    face_frames: np.ndarray  # (frames,) bool: the face is visible


def placement(zoom: float, centre: tuple[float, float]) -> np.ndarray:
    """The 2x3 matrix placing the photo scaled by `zoom` with its face centred at `centre`."""
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE_BOX
    tx = centre[0] - zoom * (fx1 + fx2) / 2
    ty = centre[1] - zoom * (fy1 + fy2) / 2
    return np.array([[zoom, 0.0, tx], [0.0, zoom, ty]])


def face_box(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """The astronaut's face box, x1 y1 x2 y2 in frame pixels, for a placement matrix."""
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE_BOX
    zoom, tx, ty = matrix[0, 0], matrix[0, 2], matrix[1, 2]
    return (tx + zoom * fx1, ty + zoom * fy1, tx + zoom * fx2, ty + zoom * fy2)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int]):
    """RGB `frames` as an MP4 (mp4v) at `path`, written atomically."""
    with atomic_path(path, suffix=".mp4") as tmp:
        with opencv_name(tmp) as name:
            writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MP4 (mp4v) on this machine")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()


def make_sample(
    folder: str | Path,
    name: str = "astronaut",
    width: int = 640,
    height: int = 480,
    fps: float = 25.0,
    seconds: float = 5.0,
    gap: tuple[float, float] | None = (2.0, 3.0),
    box_rate: float | None = None,
) -> Sample:
    """Write `NAME.mp4` and its BlazeFace-format box stream `NAME.stream` into `folder`.

    `gap` is the time span (seconds) without a face; `box_rate` the stream's sample rate
    (default: the video's), to exercise streams at another rate than the video.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    photo = skimage.data.astronaut()
    frames = round(seconds * fps)
    box_rate = box_rate or fps
    samples = round(seconds * box_rate)
    video_path = folder / f"{name}.mp4"

    def pose(t: float) -> tuple[float, tuple[float, float]]:
        # A slow zoom with a Lissajous drift keeps the face fully inside the frame.
        zoom = 0.9 + 0.35 * math.sin(2 * math.pi * t / seconds)
        centre = (
            width / 2 + 0.22 * width * math.sin(2 * math.pi * t / 3.1),
            height / 2 + 0.15 * height * math.sin(2 * math.pi * t / 2.3),
        )
        return zoom, centre

    def has_face(t: float) -> bool:
        return gap is None or not (gap[0] <= t < gap[1])

    face_frames = np.array([has_face(i / fps) for i in range(frames)], dtype=bool)

    def draw(i: int) -> np.ndarray:
        if not face_frames[i]:
            return np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        matrix = placement(*pose(i / fps))
        return cv2.warpAffine(photo, matrix, (width, height), borderValue=BACKGROUND)

    write_video(video_path, (draw(i) for i in range(frames)), fps, (width, height))

    rows = np.zeros((samples, 5), dtype=np.float32)
    last = np.array([0.0, 0.0, 1.0, 1.0])  # before any face BlazeFace reports the whole frame
    for j in range(samples):
        t = j / box_rate
        if has_face(t):
            x1, y1, x2, y2 = face_box(placement(*pose(t)))
            last = np.array([y1 / height, x1 / width, y2 / height, x2 / width])
            rows[j] = [*last, 0.98]
        else:
            rows[j] = [*last, 0.0]
    boxes_path = write_stream(folder / f"{name}.stream", rows, sr=box_rate)
    return Sample(video_path, boxes_path, frames, fps, face_frames)


# Where several people are drawn: the part of the photo around the astronaut's head (centred on
# the face, so that a mirrored copy keeps the face box), pasted on its own.
HEAD_PATCH = (130, 20, 312, 216)


@dataclass
class PeopleSample:
    video: Path
    frames: int
    fps: float
    boxes: np.ndarray  # (people, frames, 4) true face boxes x1 y1 x2 y2; NaN where unseen


def _person_path(
    person: int, u: float, width: int, height: int, travel: float = 0.7
) -> tuple[float, float, float]:
    """Zoom and face centre of generated person `person` at the fraction `u` of the clip: the
    first two cross paths (each `travel` of the frame's width), the third leaves the frame on
    the right and comes back."""
    start = (1 - travel) / 2
    if person == 0:
        return 0.8, (start + travel * u) * width, 0.55 * height
    if person == 1:
        return 0.6, (1 - start - travel * u) * width, 0.4 * height
    away = 0.35 <= u < 0.5  # off the frame for 15% of the clip
    x = 1.5 * width if away else 0.86 * width - (0.04 * width if u >= 0.5 else 0.0)
    return 0.45, x, 0.18 * height


def make_people_sample(
    folder: str | Path,
    name: str = "people",
    people: int = 2,
    width: int = 640,
    height: int = 360,
    fps: float = 10.0,
    seconds: float = 4.0,
    occlusion: tuple[float, float] | None = (0.72, 0.8),
    travel: float = 0.7,
) -> PeopleSample:
    """Write `NAME.mp4`: 1 to 3 copies of the astronaut's head (the second mirrored and
    smaller) moving through the frame: the first two on crossing paths, the third leaving and
    coming back, and the first hidden behind a panel during `occlusion` (fractions of the clip).
    Returns the true face box of each person in each frame."""
    if not 1 <= people <= 3:
        raise ValueError("people must be 1, 2 or 3")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x1, y1, x2, y2 = HEAD_PATCH
    head = skimage.data.astronaut()[y1:y2, x1:x2]
    fx1, fy1, fx2, fy2 = (a - b for a, b in zip(ASTRONAUT_FACE_BOX, (x1, y1, x1, y1)))
    frames = round(seconds * fps)
    truth = np.full((people, frames, 4), np.nan)
    video_path = folder / f"{name}.mp4"

    def draw(i: int) -> np.ndarray:
        u = i / frames
        image = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        for person in range(people):
            zoom, cx, cy = _person_path(person, u, width, height, travel)
            patch = head[:, ::-1] if person == 1 else head
            size = (round(patch.shape[1] * zoom), round(patch.shape[0] * zoom))
            patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
            left = round(cx - zoom * (fx1 + fx2) / 2)
            top = round(cy - zoom * (fy1 + fy2) / 2)
            _paste(image, patch, left, top)
            box = np.array([left + zoom * fx1, top + zoom * fy1, left + zoom * fx2,
                            top + zoom * fy2])  # fmt: skip
            hidden = person == 0 and occlusion and occlusion[0] <= u < occlusion[1]
            if box[0] >= 0 and box[2] <= width and not hidden:
                truth[person, i] = box
        if occlusion and occlusion[0] <= u < occlusion[1]:
            zoom, cx, cy = _person_path(0, u, width, height, travel)
            half = 0.5 * zoom * (HEAD_PATCH[2] - HEAD_PATCH[0])
            top, bottom = int(cy - half * 1.2), int(cy + half * 1.2)
            image[max(top, 0) : bottom, max(int(cx - half), 0) : int(cx + half)] = 128
        return image

    write_video(video_path, (draw(i) for i in range(frames)), fps, (width, height))
    return PeopleSample(video_path, frames, fps, truth)


def _paste(frame: np.ndarray, patch: np.ndarray, left: int, top: int) -> None:
    """Draw `patch` with its top-left corner at (left, top), clipped to the frame."""
    height, width = frame.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + patch.shape[1], width), min(top + patch.shape[0], height)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = patch[y0 - top : y1 - top, x0 - left : x1 - left]


def run_cli(args: list[str]) -> int:
    """`emonet ARGS` in this process; its exit status."""
    from emonet_cli.cli import cli

    try:
        return int(cli.main(args, prog_name="emonet", standalone_mode=False) or 0)
    except SystemExit as exc:  # analyze exits 1 when its input failed
        return int(exc.code or 0)
    except click.ClickException as exc:  # a usage error in the extra options
        exc.show()
        return exc.exit_code


USAGE = """Usage: python -m emonet_cli.demo [FOLDER] [EMONET ANALYZE OPTIONS]...

  Write a sample video (FOLDER/astronaut.mp4, default FOLDER: demo) with its true face boxes,
  then analyse it twice with `emonet analyze`: detecting the faces, and from the boxes.
  Options after FOLDER go to both analyses, e.g. --weights FILE."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    folder = Path(argv.pop(0)) if argv and not argv[0].startswith("-") else Path("demo")
    sample = make_sample(folder)
    # The generated boxes go into a folder of their own: beside the video they would be used
    # instead of the detector.
    boxes = folder / "generated-boxes" / sample.boxes.name
    boxes.parent.mkdir(exist_ok=True)
    for name in (sample.boxes.name, sample.boxes.name + "~"):
        os.replace(folder / name, boxes.parent / name)
    print(f"sample video: {sample.video} ({sample.frames} frames), its true boxes: {boxes}")
    detected = ["analyze", str(sample.video), "--detect", "--nclass", "8"]
    status = run_cli([*detected, "--landmarks", "--embeddings", *argv])
    if status:
        # The error itself (e.g. weights that could not be fetched) is already on stderr.
        print(
            f"The sample is in {folder}/; once the weights are in place run: "
            f"emonet analyze {sample.video} --nclass 8",
            file=sys.stderr,
        )
        return status
    print(
        f"results: {folder}/{sample.video.stem}.* (CSV, NOVA annotations, summary JSON, and "
        f"{sample.video.stem}.stream: the faces the detector found, as DISCOVER writes them)"
    )
    from_boxes = folder / "from-boxes"
    status = run_cli(
        ["analyze", str(sample.video), "--bbox", str(boxes), "-o", str(from_boxes), *argv]
    )
    if not status:
        print(f"the box-stream route (--bbox {boxes}): {from_boxes}/{sample.video.stem}.*")
    return status


if __name__ == "__main__":
    sys.exit(main())
