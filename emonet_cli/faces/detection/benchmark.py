"""Frames per second of the BlazeFace detector alone (resize, network, decoding, NMS).

python -m emonet_cli.faces.detection.benchmark [--frames 64] [--batch-size 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from emonet_cli.faces.detection.blazeface import DEFAULT_BATCH_SIZE, BlazeFace

FRAME_SIZE = (1280, 720)  # width, height
DISTINCT_FRAMES = 8  # frames repeat after these: the work does not depend on their content


def detector_throughput(
    precision: str = "fp32",
    frames: int = 64,
    frame_size: tuple[int, int] = FRAME_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "auto",
    repeat: int = 3,
) -> dict:
    """Time BlazeFace.detect on `frames` noise frames, `repeat` times after one warm-up
    batch; returns the settings and the best and median frames/s (the best is the least
    disturbed by other processes)."""
    detector = BlazeFace(device=device, precision=precision, batch_size=batch_size)
    width, height = frame_size
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, (DISTINCT_FRAMES, height, width, 3), dtype=np.uint8)
    clip = [distinct[index % DISTINCT_FRAMES] for index in range(frames)]
    detector.detect(clip[:batch_size])  # kernels are chosen and memory allocated on first use
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        for start in range(0, frames, batch_size):
            detector.detect(clip[start : start + batch_size])
        rates.append(frames / (time.perf_counter() - started))
    return {
        "device": str(detector.device),
        "precision": detector.precision,
        "frames": frames,
        "frame_size": f"{width}x{height}",
        "batch_size": batch_size,
        "frames_per_s_best": round(max(rates), 1),
        "frames_per_s_median": round(statistics.median(rates), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for precision in args.precision:
        result = detector_throughput(
            precision, args.frames, FRAME_SIZE, args.batch_size, args.device, args.repeat
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
