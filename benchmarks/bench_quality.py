"""What each frame is worth costs little: the CPU time of the head pose, face size and
sharpness of every face, beside the CPU time of the whole `emonet analyze` of the same video
(issue 39: at most 5%).

    python benchmarks/bench_quality.py VIDEO STREAM WEIGHTS [--device cpu]

In one process: `analyze_file` on VIDEO with its box STREAM and WEIGHTS (landmarks written),
timed with the process's CPU time (every thread's); then, the frames decoded and cropped again
outside the timing, the quality work alone on the same faces: the sharpness of each crop, its
face size and the pose fitted to the landmarks that analysis wrote (the stand-in weights'
landmarks fit no face: the fit runs to its end and is refused, the dearest case), and, for
families without landmarks, the pose from BlazeFace keypoints (projected from the 3D face).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(video: Path, stream: Path, weights: Path, device: str) -> dict:
    import cv2
    import numpy as np

    from emonet_cli.analysis.analyze import analyze_file
    from emonet_cli.faces import BoxSource
    from emonet_cli.faces.align import PUBLISHED_CROP
    from emonet_cli.faces.boxfiles import read_boxes
    from emonet_cli.faces.face import FrameFace
    from emonet_cli.faces.pose import (
        KEYPOINT_MODEL,
        camera_matrix,
        pose_from_keypoints,
        pose_from_landmarks,
        rotation_from_angles,
    )
    from emonet_cli.faces.quality import crop_sharpness, face_size
    from emonet_cli.formats.streams import read_stream
    from emonet_cli.media.video import MediaReader
    from emonet_cli.models.emonet.checkpoint import load_model
    from emonet_cli.models.emonet.inference import Predictor
    from emonet_cli.outputs.writers import OutputOptions

    loaded = load_model(weights=weights, nclass=8, offline=True, progress=False)
    predictor = Predictor(loaded.model, device=device, precision="fp32")
    with tempfile.TemporaryDirectory(prefix="emonet-quality-") as tmp:
        options = OutputOptions(directory=Path(tmp), landmarks=True)
        started = time.process_time()
        analyze_file(video, predictor, BoxSource(path=stream), options=options)
        analysis_s = time.process_time() - started
        landmarks = read_stream(Path(tmp) / f"{video.stem}.landmarks.stream").data
    with MediaReader(video) as reader:
        info = reader.info
        frames = list(reader)
    boxes = read_boxes(stream, (info.width, info.height))
    size = (info.width, info.height)
    rvec, _ = cv2.Rodrigues(rotation_from_angles(20, -10, 5))
    keypoints, _ = cv2.projectPoints(
        KEYPOINT_MODEL, rvec, np.array([[0.0], [0.0], [60.0]]), camera_matrix(*size), None
    )
    keypoints = keypoints.reshape(-1, 2)
    quality_s = keypoint_s = 0.0
    faces = 0
    for frame in frames:
        face = FrameFace(boxes.boxes[frame.index], float(boxes.conf[frame.index]))
        if not face.usable(0.65):
            continue
        crop, matrix = PUBLISHED_CROP.cut(frame, face)
        points = landmarks[frame.index].reshape(-1, 2)
        started = time.process_time()
        face_size(face.box)
        crop_sharpness(crop, matrix, size)
        pose_from_landmarks(points, size)
        quality_s += time.process_time() - started
        started = time.process_time()
        pose_from_keypoints(keypoints, size)
        keypoint_s += time.process_time() - started
        faces += 1
    return {
        "frames": len(frames),
        "faces": faces,
        "analysis_cpu_s": analysis_s,
        "quality_cpu_s": quality_s,
        "keypoint_pose_cpu_s": keypoint_s,
    }


def quality_line(result: dict) -> str:
    """The benchmark's line about it."""
    faces = max(result["faces"], 1)
    share = result["quality_cpu_s"] / result["analysis_cpu_s"]
    return (
        f"what each frame is worth (pose from 68 landmarks, face size, sharpness): "
        f"{1000 * result['quality_cpu_s'] / faces:.2f} ms CPU per face, "
        f"{100 * share:.1f}% of emonet analyze's CPU time "
        f"({1000 * result['analysis_cpu_s'] / max(result['frames'], 1):.0f} ms per frame; "
        f"limit 5%); pose from 6 keypoints "
        f"{1000 * result['keypoint_pose_cpu_s'] / faces:.2f} ms per face"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("stream", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    print(json.dumps(measure(args.video, args.stream, args.weights, args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
