"""`make demo`: a generated sample video with its BlazeFace box stream, analysed end to end.

The sample is scikit-image's astronaut photo moving and zooming across the frame, with one
second in which no face is shown (the detector then repeats its last box with confidence 0,
as DISCOVER's BlazeFace module does).

    python -m emonet_cli.demo [FOLDER] [-- extra analyze options]
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np
import skimage.data

from emonet_cli.fileio import atomic_path
from emonet_cli.streams import write_stream

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

    face_frames = np.zeros(frames, dtype=bool)
    with atomic_path(video_path, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MP4 (mp4v) on this machine")
        for i in range(frames):
            t = i / fps
            face_frames[i] = has_face(t)
            if face_frames[i]:
                frame = cv2.warpAffine(
                    photo, placement(*pose(t)), (width, height), borderValue=BACKGROUND
                )
            else:
                frame = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
