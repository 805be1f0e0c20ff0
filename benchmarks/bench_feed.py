"""The feed alone: frames/s that decoding, the box lookup and cropping deliver with no model,
for one input or several in flight at once (as `emonet analyze --decoders N` runs them).

    python benchmarks/bench_feed.py VIDEO [VIDEO ...] [--in-flight 1 3] [--device cpu]

Each input is analysed by the real pipeline (emonet_cli.analysis.pipeline.Analysis, its
decoding thread and its crops) with a model that runs nothing: what is timed is everything
`emonet analyze` does before and after the network. Boxes come as `emonet analyze` finds them
(a box stream beside the video). `--device` names where the model would run: the decoding
threads follow it (one FFmpeg thread beside a CPU model, FFmpeg's own choice beside an
accelerator; see media.tuning). Prints one JSON line per --in-flight value.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


class NoModel:
    """A predictor that runs nothing: outputs of the right shapes, all zero, at once."""

    def __init__(self, family: str = "emonet", device: str = "cpu"):
        from emonet_cli.models import registry

        model = registry.family(family)
        self.family = family
        self.nclass = 0 if model.categories else 8  # EMOTIC: categories, no expressions
        self.device = device
        self.precision = "fp32"
        self.classes = None
        self.thresholds = np.zeros(len(model.categories), dtype=np.float32)

    def __call__(self, inputs):
        from emonet_cli.constants import EMBEDDING_SIZE, N_LANDMARKS
        from emonet_cli.models.predictions import Predictions

        n = len(inputs[0] if isinstance(inputs, tuple) else inputs)
        zeros = np.zeros(n, dtype=np.float32)
        return Predictions(
            np.zeros((n, self.nclass), dtype=np.float32),
            zeros,
            zeros,
            np.zeros((n, N_LANDMARKS, 2), dtype=np.float32),
            np.zeros((n, EMBEDDING_SIZE), dtype=np.float32),
            zeros if len(self.thresholds) else None,
            np.zeros((n, len(self.thresholds)), dtype=np.float32) if len(self.thresholds) else None,
        )


def feed_throughput(
    videos: list[Path], in_flight: int, family: str = "emonet", device: str = "cpu"
) -> dict:
    """Frames/s of all `videos` through the pipeline with NoModel, `in_flight` at once (each
    in a thread of its own, as --decoders runs them)."""
    from emonet_cli.analysis.pipeline import Analysis, AnalysisSettings
    from emonet_cli.faces import BoxOptions

    pending = list(videos)
    lock = threading.Lock()
    frames = [0]
    errors: list[BaseException] = []
    model = NoModel(family, device)

    def worker() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                video = pending.pop(0)
            try:
                source = BoxOptions().source_for(video)
                analysis = Analysis(video, model, source, AnalysisSettings())
                try:
                    done = sum(group.frames for group in analysis.groups())
                finally:
                    analysis.close()
            except BaseException as exc:  # reported by the caller
                errors.append(exc)
                return
            with lock:
                frames[0] += done

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return {
        "in_flight": in_flight,
        "inputs": len(videos),
        "frames": frames[0],
        "seconds": round(seconds, 3),
        "fps": frames[0] / seconds,
    }


def feed_lines(video: Path, stream: Path, inputs: int, model_fps: float, precision: str,
               device: str, work: Path, run_child) -> list[str]:  # fmt: skip
    """`make bench`'s lines on the feed: `inputs` links to the video (with its box stream),
    through the feed alone in a process of its own, one input in flight and all of them at
    once, beside the model alone of the same run; and which side bounds the whole process.
    `run_child(command, log)` is the benchmark's (it returns the wall time, RSS and output)."""
    folder = work / f"feed{inputs}"
    folder.mkdir(exist_ok=True)
    data = stream.with_name(stream.name + "~")  # an SSI stream's data file
    for k in range(inputs):
        for target, suffix in ((video, ".mp4"), (stream, ".stream"), (data, ".stream~")):
            link = folder / f"clip{k}{suffix}"
            if not link.exists():
                link.symlink_to(target.resolve())
    videos = [str(folder / f"clip{k}.mp4") for k in range(inputs)]
    command = [sys.executable, str(Path(__file__).resolve()), *videos, "--device", device]
    text = run_child([*command, "--in-flight", "1", str(inputs)], work / "feed.log")[2]
    one, many = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    fed = max(one["fps"], many["fps"])
    if fed < model_fps:
        verdict = f"the feed: the model could take {model_fps / fed:.1f}x what it delivers"
    else:
        verdict = f"the model: the feed delivers {fed / model_fps:.1f}x what it takes"
    return [
        f"feed alone (decoding, boxes, crops; no model), {inputs} inputs of "
        f"{one['frames'] // inputs} frames: 1 in flight {one['fps']:.1f} frames/s, {inputs} in "
        f"flight (--decoders {inputs}) {many['fps']:.1f} frames/s; the model alone "
        f"{model_fps:.2f} frames/s ({precision})",
        f"the bottleneck on this machine is {verdict}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1])
    parser.add_argument("--model", default="emonet", help="the family whose crop is cut")
    parser.add_argument("--device", default="cpu", help="where the model would run")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(REPO))
    from emonet_cli.media.tuning import tune_process

    tune_process()
    for count in args.in_flight:
        print(json.dumps(feed_throughput(args.videos, count, args.model, args.device)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
