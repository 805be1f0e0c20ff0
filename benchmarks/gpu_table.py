"""The GPU table that benchmarks/gpu_check.sh prints: on one accelerator, in one run,

- the device's bf16 peak (a large bf16 matmul, timed here), against which the model is put;
- the model alone (EmoNet and RBDM, bf16, large batches of real crops): faces/s, its GFLOP/s
  as a share of that peak, peak GPU memory;
- the whole process (`emonet analyze`, start to exit) on one long video, and on several
  inputs with --decoders 1 and with the default on an accelerator;
- the feed alone (decoding, boxes and crops with no model, bench_feed.py) for 1 and N inputs
  in flight: which side bounds the whole process.

    python benchmarks/gpu_table.py [--workdir DIR] [--frames 1500] [--inputs 8]
                                   [--batch-size 256] [--device cuda] [--quick]

Stand-in weights (tests/standin.py): speed does not depend on their values. RBDM's network is
filled from its stand-in arrays in memory where h5py (which reads its .h5) is missing; its
whole-process line then says so. --quick (tiny sizes) is a smoke run of the script itself,
on any device.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for folder in (REPO, HERE, REPO / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from bench_feed import feed_throughput  # noqa: E402
from bench_machine import matmul_peak, usable_cores  # noqa: E402

VIDEO_SIZE, VIDEO_FPS = (1280, 720), 25.0


def make_videos(work: Path, frames: int, inputs: int) -> tuple[Path, list[Path]]:
    """One generated 720p video of `frames` frames with its box stream beside it, and a folder
    of `inputs` links to it (each with its stream): the same work, several inputs."""
    from emonet_cli.demo import make_sample

    name = f"gpu{frames}"
    video = work / f"{name}.mp4"
    if not video.exists():
        width, height = VIDEO_SIZE
        make_sample(work, name, width, height, VIDEO_FPS, frames / VIDEO_FPS, gap=None)
    many = work / f"many{inputs}"
    many.mkdir(exist_ok=True)
    for k in range(inputs):
        for suffix in (".mp4", ".stream", ".stream~"):  # the stream's data file too
            link = many / f"clip{k:02d}{suffix}"
            if not link.exists():
                link.symlink_to(video.with_suffix(suffix))
    return video, sorted(many.glob("*.mp4"))


def rbdm_loaded():
    """RBDM's network with its stand-in values, without h5py."""
    from emonet_cli.models.rbdm.inference import LoadedRbdm, load_keras_weights
    from emonet_cli.models.rbdm.keras_layout import standin_arrays
    from emonet_cli.models.rbdm.network import RbdmNet

    model = RbdmNet()
    load_keras_weights(model, standin_arrays())
    return LoadedRbdm(model.eval(), model.nclass, Path("standin"), "", None)


def network_gflop(predictor, inputs) -> float:
    """GFLOP of one input through the predictor's network (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        predictor(inputs[:1])
    return counter.get_total_flops() / 1e9


def model_alone(family: str, loaded, video: Path, args) -> dict:
    """Faces/s of the family's predictor alone on batches of --batch-size real crops (bf16),
    after two warm-up batches, over about `seconds`; its GFLOP per face and peak memory."""
    import torch
    from bench_probes import video_crops

    from emonet_cli.models import registry

    model = registry.family(family)
    predictor = model.predictor_for(loaded, args.device, args.precision)
    crops = video_crops(video, video.with_suffix(".stream"), args.batch_size, model.crop)
    gflop = network_gflop(predictor, crops)
    cuda = predictor.device.type == "cuda"

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize()

    if cuda:
        torch.cuda.reset_peak_memory_stats(predictor.device)
    for _ in range(2):
        predictor(crops)
    synchronize()
    batches, started = 0, time.perf_counter()
    while batches < 3 or time.perf_counter() - started < args.seconds:
        predictor(crops)
        batches += 1
    synchronize()
    seconds = time.perf_counter() - started
    peak_mb = torch.cuda.max_memory_allocated(predictor.device) / 2**20 if cuda else None
    result = {
        "family": family,
        "precision": predictor.precision,
        "fps": len(crops) * batches / seconds,
        "gflop": gflop,
        "peak_mb": peak_mb,
    }
    del predictor
    if cuda:
        torch.cuda.empty_cache()
    return result


def whole_process(label: str, inputs: list[Path], weights: Path, args, *extra: str) -> dict:
    """`emonet analyze` in a process of its own, start to exit: frames/s over every input."""
    out = args.workdir / f"out-{len(inputs)}-{abs(hash((label, extra))) % 10**6}"
    command = [sys.executable, "-m", "emonet_cli", "analyze", *map(str, inputs)]
    command += ["--weights", str(weights), "--device", args.device, "--precision", args.precision]
    command += ["--batch-size", str(args.batch_size), "-o", str(out), "--quiet", "--json", *extra]
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{label}: emonet analyze failed:\n{proc.stderr[-3000:]}")
    frames = sum(json.loads(line)["frames"] for line in proc.stdout.splitlines() if line[:1] == "{")
    return {"label": label, "frames": frames, "wall_s": wall, "fps": frames / wall}


def rate(value: float) -> str:
    """A rate with the digits that matter: thousands on a GPU, a few on a CPU (--quick)."""
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def measure(args) -> None:
    import importlib.util

    import torch
    from standin import STANDIN_MAKERS

    from emonet_cli.devices import select_device
    from emonet_cli.models import registry
    from emonet_cli.run.in_flight import default_decoders

    device = select_device(args.device)
    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    decoders = default_decoders(device)
    print(f"device: {name}; {usable_cores()} usable cores; torch {torch.__version__}; "
          f"--decoders default here: {decoders}", flush=True)  # fmt: skip
    peak_precision = "bf16" if device.type == "cuda" else "fp32"
    peak = matmul_peak(peak_precision, args.matmul_size, args.device, args.seconds)
    print(f"{peak_precision} matmul peak ({args.matmul_size}^3): {peak / 1000:.1f} TFLOP/s",
          flush=True)  # fmt: skip

    video, many = make_videos(args.workdir, args.frames, args.inputs)
    weights = STANDIN_MAKERS["emonet"](args.workdir)
    rbdm_h5 = None
    if importlib.util.find_spec("h5py") is not None:
        rbdm_h5 = STANDIN_MAKERS["rbdm"](args.workdir)
    emonet = registry.family("emonet").load(weights, offline=True, progress=False)
    models = [model_alone("emonet", emonet, video, args)]
    models.append(model_alone("rbdm", rbdm_loaded(), video, args))
    for model in models:
        print(f"  model alone, {model['family']}: {model['fps']:.0f} faces/s", flush=True)

    feeds = [feed_throughput([video], 1, device=args.device)]
    feeds.append(feed_throughput(many, decoders, device=args.device))
    for feed in feeds:
        print(f"  feed alone, {feed['in_flight']} in flight: {feed['fps']:.0f} frames/s",
              flush=True)  # fmt: skip

    runs = [
        whole_process("EmoNet, 1 video", [video], weights, args),
        whole_process(
            f"EmoNet, {len(many)} inputs, --decoders 1", many, weights, args, "--decoders", "1"
        ),  # fmt: skip
        whole_process(
            f"EmoNet, {len(many)} inputs, --decoders {decoders} (default)", many, weights, args
        ),  # fmt: skip
    ]
    if rbdm_h5 is not None:
        runs.append(whole_process("RBDM, 1 video", [video], rbdm_h5, args, "--model", "rbdm"))
    for run in runs:
        print(f"  {run['label']}: {run['fps']:.0f} frames/s", flush=True)

    print()
    rows = [("measurement", "frames/s", "of the model alone", "model GFLOP/s", "of matmul peak",
             "peak GPU MB")]  # fmt: skip
    for model in models:
        gflops = model["fps"] * model["gflop"]
        memory = f"{model['peak_mb']:.0f}" if model["peak_mb"] is not None else "n/a"
        rows.append((f"{model['family']} model alone, {model['precision']}, batch "
                     f"{args.batch_size}", rate(model["fps"]), "1.00", f"{gflops:.0f}",
                     f"{100 * gflops / peak:.1f}%", memory))  # fmt: skip
    for run in runs:
        alone = models[1 if run["label"].startswith("RBDM") else 0]["fps"]
        rows.append((run["label"] + " (whole process)", rate(run["fps"]),
                     f"{run['fps'] / alone:.2f}", "", "", ""))  # fmt: skip
    for feed in feeds:
        rows.append((f"feed alone, {feed['in_flight']} input(s) in flight", rate(feed["fps"]),
                     f"{feed['fps'] / models[0]['fps']:.2f}", "", "", ""))  # fmt: skip
    print(table(rows))
    fed = max(feed["fps"] for feed in feeds)
    side = "the feed (decoding, boxes, crops)" if fed < models[0]["fps"] else "the model"
    print(f"bottleneck here: {side}; feed {fed:.0f} frames/s with {decoders} in flight against "
          f"EmoNet alone {models[0]['fps']:.0f} faces/s")  # fmt: skip
    if rbdm_h5 is None:
        print("RBDM whole process: not measured (h5py, which reads its .h5, is not installed)")
    print(
        f"GPU table: {args.frames}-frame {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} H.264 video, "
        f"batch {args.batch_size}, {args.precision}; took {time.perf_counter() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="videos, weights, outputs [temporary]")
    parser.add_argument("--frames", type=int, default=1500, help="frames of the video")
    parser.add_argument("--inputs", type=int, default=8, help="inputs of the several-input runs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--quick", action="store_true", help="a smoke run of this script")
    args = parser.parse_args(argv)
    args.seconds, args.matmul_size = 3.0, 8192
    if args.quick:
        args.frames, args.inputs, args.batch_size, args.seconds = 8, 2, 4, 0.2
        args.matmul_size = 256
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        measure(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="emonet-gpu-") as tmp:
        args.workdir = Path(tmp)
        measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
