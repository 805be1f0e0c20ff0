"""What the benchmark runs in child processes, one process per measurement; each prints one
JSON line.

    python benchmarks/bench_probes.py baseline VIDEO STREAM WEIGHTS [--device D]
    python benchmarks/bench_probes.py model VIDEO STREAM WEIGHTS [--device D] [--precision P]
                                           [--batch 8] [--batches N] [--model rbdm]
    python benchmarks/bench_probes.py operators VIDEO STREAM WEIGHTS [same options as model]

`baseline` is the published demo's loop; `model` is the model alone through our Predictor (or
another family's predictor, with --model), set up as `emonet analyze` sets itself up, with its
start-up split into imports, weights and the first pass; `operators` is where the model's time
goes, operator by operator (torch.profiler), with the convolutions' own GFLOP/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

STARTED = time.time()  # as early as this process can tell: the parent adds the interpreter's
REPO = Path(__file__).resolve().parent.parent
MIN_FACE_CONF = 0.65  # the CLI's default threshold, applied by the baseline as well


def run_baseline(args: argparse.Namespace) -> dict:
    """The published demo's loop with our EmoNet class and the same weights: every frame
    decoded into a list first, then one face at a time cropped from its box, resized to
    256x256, float32, batch 1."""
    import cv2
    import torch

    from emonet_cli.constants import INPUT_SIZE
    from emonet_cli.devices import select_device
    from emonet_cli.faces import read_boxes
    from emonet_cli.models.emonet.checkpoint import load_model

    device = select_device(args.device)
    model = load_model(args.weights, offline=True, progress=False).model.to(device).eval()

    started = time.perf_counter()  # the work, after imports and loading the weights
    capture = cv2.VideoCapture(str(args.video))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    capture.release()
    height, width = frames[0].shape[:2]
    boxes = read_boxes(args.stream, frame_size=(width, height))

    results = []
    with torch.no_grad():
        for index, frame in enumerate(frames):
            if index >= len(boxes) or boxes.conf[index] < MIN_FACE_CONF:
                results.append(None)
                continue
            x1, y1, x2, y2 = (int(round(v)) for v in boxes.boxes[index])
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(x2, width), min(y2, height)
            face = cv2.resize(frame[y1:y2, x1:x2], (INPUT_SIZE, INPUT_SIZE))
            image = torch.Tensor(face).permute(2, 0, 1).to(device) / 255.0
            out = model(image.unsqueeze(0))
            probabilities = torch.softmax(out.expression, dim=1)
            results.append(
                (
                    int(probabilities.argmax().item()),
                    float(out.valence.item()),
                    float(out.arousal.item()),
                )
            )
    return {
        "frames": len(frames),
        "frames_with_face": sum(r is not None for r in results),
        "seconds": round(time.perf_counter() - started, 3),
    }


def video_crops(video: Path, stream: Path, count: int, crop=None):
    """The model input of the video's first `count` faces, as the pipeline cuts and batches
    it with `crop` (a family's ModelInput for the stream's face boxes; default EmoNet's)."""
    from emonet_cli.faces import read_boxes
    from emonet_cli.faces.align import PUBLISHED_CROP
    from emonet_cli.faces.face import FrameFace
    from emonet_cli.media.video import MediaReader

    crop = (crop or PUBLISHED_CROP).for_boxes("face")
    crops = []
    with MediaReader(video) as reader:
        boxes = read_boxes(stream, frame_size=(reader.info.width, reader.info.height))
        for frame in reader:
            face = FrameFace(boxes.boxes[frame.index], float(boxes.conf[frame.index]))
            crops.append(crop.cut(frame, face)[0])
            if len(crops) == count:
                break
    return crop.stack(crops)


def run_model(args: argparse.Namespace) -> dict:
    """The model alone (--model's family): --batches batches of --batch real crops, cut with
    the family's crop, through its predictor, after the process set-up of `emonet analyze` and
    one batch more (its warm-up, timed apart). Times are epoch seconds, for the parent to split
    the start-up."""
    import emonet_cli.cli  # noqa: F401  (what `emonet` imports before any work)
    from emonet_cli.media.tuning import tune_process

    tune_process()
    from emonet_cli.models import registry

    family = registry.family(args.model)
    imported = time.time()
    loaded = family.load(args.weights, offline=True, progress=False)  # SHA-256, as the CLI
    predictor = family.predictor_for(loaded, args.device, args.precision)
    weights_loaded = time.time()
    crops = video_crops(args.video, args.stream, args.batch, family.crop)

    def timed_batch() -> float:
        t0 = time.perf_counter()
        predictor(crops)
        if predictor.device.type == "cuda":
            import torch

            torch.cuda.synchronize(predictor.device)
        return time.perf_counter() - t0

    first = timed_batch()
    steady = [timed_batch() for _ in range(args.batches)]
    return {
        "started": STARTED,
        "imported": imported,
        "weights_loaded": weights_loaded,
        "model": family.name,
        "precision": predictor.precision,
        "device": str(predictor.device),
        "first_batch_s": round(first, 4),
        "steady_batch_s": round(sum(steady) / len(steady), 4),
        "fps": args.batch * len(steady) / sum(steady),
    }


def run_operators(args: argparse.Namespace) -> dict:
    """The model's CPU time by operator over --batches batches after a warm-up one: each
    operator's share, and the rate of the convolutions alone (their FLOPs over their time)."""
    import torch
    from bench_report import is_convolution
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    from emonet_cli.media.tuning import tune_process
    from emonet_cli.models.emonet.checkpoint import load_model
    from emonet_cli.models.emonet.inference import Predictor

    tune_process()
    model = load_model(args.weights, offline=True, progress=False).model
    predictor = Predictor(model, args.device, args.precision)
    crops = video_crops(args.video, args.stream, args.batch)
    counter = FlopCounterMode(display=False)
    with counter:
        predictor(crops)  # the warm-up, counted
    conv_gflop = counter.get_flop_counts()["Global"][torch.ops.aten.convolution] / 1e9
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.batches):
            predictor(crops)
    seconds = {e.key: e.self_cpu_time_total / 1e6 for e in profiler.key_averages()}
    total = sum(seconds.values())
    conv = sum(t for name, t in seconds.items() if is_convolution(name))
    return {
        "precision": predictor.precision,
        "conv_gflop_per_s": conv_gflop * args.batches / conv,
        "shares": {name: t / total for name, t in seconds.items() if t / total >= 0.005},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("probe", choices=("baseline", "model", "operators"))
    parser.add_argument("video", type=Path)
    parser.add_argument("stream", type=Path)
    parser.add_argument("weights", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--model", default="emonet", help="the model family (models.registry)")
    parser.add_argument("--batch", type=int, default=8, help="frames per batch (the CLI's 8)")
    parser.add_argument("--batches", type=int, default=4, help="timed batches")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(REPO))
    probe = {"baseline": run_baseline, "model": run_model, "operators": run_operators}
    print(json.dumps(probe[args.probe](args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
