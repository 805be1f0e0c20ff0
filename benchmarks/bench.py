"""Throughput and memory of `emonet analyze` against the published per-frame loop.

    python benchmarks/bench.py [--frames 300] [--long-frames 1500] [--repeat 1] [--quick]

On a generated 1280x720 video with its BlazeFace box stream, each configuration runs in its
own process (so that its peak RSS is its own):

  (a) the published demo's loop: every frame decoded into a list first, then for each frame
      the box cropped and resized one face at a time, float32, batch 1, contiguous memory;
  (b) `emonet analyze` with its defaults;
  (c) `emonet analyze --precision fp32`;
  (b) again on a longer video, to show that the peak RSS does not grow with its length.

Frames/s are end to end: the whole process, from interpreter start (imports, weights) to the
last output written. Stand-in weights are used unless --weights is given: speed does not
depend on their values. This is a benchmark, not a test: nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIDEO_SIZE = (1280, 720)
VIDEO_FPS = 25.0
MIN_FACE_CONF = 0.65  # the CLI's default threshold, applied by the baseline as well
TARGET_DEFAULT = 5.0  # (b)/(a)
TARGET_FP32 = 1.3  # (c)/(a)
TARGET_RSS_MB = 50.0  # long (b) minus short (b)
PEAKS = ("fp32", "bf16")
BUSY_SHARE = 0.25  # other processes using more than this share of the cores: warn


# --- (a) the published per-frame loop, run in a child process -------------------------------


def run_baseline(video: Path, stream: Path, weights: Path, device_name: str) -> dict:
    """The published demo's loop with our EmoNet class and the same weights."""
    import cv2
    import torch

    from emonet_cli.boxes import read_boxes
    from emonet_cli.checkpoint import load_model
    from emonet_cli.constants import INPUT_SIZE
    from emonet_cli.inference import select_device

    device = select_device(device_name)
    model = load_model(weights, offline=True, progress=False).model.to(device).eval()

    started = time.perf_counter()  # the work, after imports and loading the weights
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    capture.release()
    height, width = frames[0].shape[:2]
    boxes = read_boxes(stream, frame_size=(width, height))

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


# --- the parent: machine, inputs, measurements, table ----------------------------------------


@dataclass
class Run:
    label: str
    frames: int
    wall_s: float  # the whole process, from its start to its exit
    work_s: float  # as the process timed itself: decoding to results, after the weights loaded
    peak_rss_mb: float
    precision: str

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s


def cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_busy(seconds: float = 1.0) -> float | None:
    """The share (0-1) of all cores that were busy over the next `seconds`; Linux only."""

    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]  # all ticks; idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def matmul_peak(precision: str, size: int, device_name: str, seconds: float) -> float:
    """The best GFLOP/s of size^3 matmuls in `precision` over about `seconds`."""
    import torch

    from emonet_cli.inference import select_device

    device = select_device(device_name)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a = torch.rand(size, size, device=device).to(dtype)
    b = torch.rand(size, size, device=device).to(dtype)

    def timed() -> float:
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    timed()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        best = min(best, timed())
    return 2.0 * size**3 / best / 1e9


def model_gflop() -> float:
    """GFLOP of one 256x256 frame through EmoNet, as torch's FlopCounterMode counts them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from emonet_cli.constants import INPUT_SIZE
    from emonet_cli.model import EmoNet

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        EmoNet(8).eval()(torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE))
    return counter.get_total_flops() / 1e9


def make_inputs(folder: Path, frames: int) -> tuple[Path, Path]:
    """The demo's moving astronaut, `frames` frames at 1280x720 with no gap, and its boxes;
    generated once (the content is deterministic) and reused from a kept --workdir."""
    from emonet_cli.demo import make_sample

    name = f"bench{frames}"
    video, stream = folder / f"{name}.mp4", folder / f"{name}.stream"
    if not (video.exists() and stream.exists()):
        width, height = VIDEO_SIZE
        seconds = frames / VIDEO_FPS
        sample = make_sample(folder, name, width, height, VIDEO_FPS, seconds, gap=None)
        video, stream = sample.video, sample.boxes
    return video, stream


def measure_cluster(args, work: Path, inputs: int, frames: int) -> tuple[float, float]:
    """Wall seconds of `emonet analyze` over `inputs` small clips locally and through
    `--workers 2` (fp32, the same clips and outputs): the cost of the distributed route."""
    from emonet_cli.demo import make_sample

    folder = work / f"cluster{inputs}x{frames}"
    if not folder.exists():
        for i in range(inputs):
            make_sample(folder, f"clip{i:02d}", 96, 72, VIDEO_FPS, frames / VIDEO_FPS, gap=None)
    common = [sys.executable, "-m", "emonet_cli", "analyze", str(folder), "--full-frame"]
    common += ["--weights", str(args.weights), "--device", args.device, "--precision", "fp32"]
    walls = []
    for label, extra in (("local", ()), ("workers", ("--workers", "2"))):
        command = [*common, "-o", str(work / f"out-{label}"), "--quiet", *extra]
        walls.append(run_child(command, work / f"cluster-{label}.log")[0])
    return walls[0], walls[1]


def standin_weights(folder: Path) -> Path:
    """The tests' deterministic stand-in checkpoint (56 MB), written into `folder`."""
    path = folder / "emonet_8.pth"
    if not path.exists():
        sys.path.insert(0, str(REPO / "tests"))
        from standin import save_standin

        save_standin(path, 8)
    return path


def run_child(command: list[str], log: Path) -> tuple[float, float, str]:
    """Run `command`; returns its wall time, its own peak RSS in MB and its output."""
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, text  # ru_maxrss is in KiB on Linux


def last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"no JSON result in:\n{text[-3000:]}")


def measure_baseline(label: str, video: Path, stream: Path, args, work: Path) -> Run:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--device",
        args.device,
        "--baseline-child",
        str(video),
        str(stream),
        str(args.weights),
    ]
    wall, rss, text = run_child(command, work / "baseline.log")
    result = last_json(text)
    return Run(label, result["frames"], wall, result["seconds"], rss, "fp32")


def measure_cli(label: str, video: Path, stream: Path, args, work: Path, extra=()) -> Run:
    command = [
        sys.executable,
        "-m",
        "emonet_cli",
        "analyze",
        str(video),
        # "--detect" in `extra` finds the faces instead of reading the box stream.
        *(() if "--detect" in extra else ("--bbox", str(stream))),
        "--weights",
        str(args.weights),
        "--device",
        args.device,
        "-o",
        str(work / "out"),
        "--quiet",
        "--json",
        *extra,
    ]
    wall, rss, text = run_child(command, work / "analyze.log")
    result = last_json(text)
    summary = json.loads(Path(result["summary"]).read_text())
    return Run(label, result["frames"], wall, result["seconds"], rss, summary["precision"])


def format_table(runs: list[Run], baseline: Run, gflop: float, peaks: dict[str, float]) -> str:
    header = (
        "configuration",
        "frames",
        "wall s",
        "startup s",
        "frames/s",
        "x (a)",
        "model GFLOP/s",
        "of matmul peak",
        "peak RSS MB",
    )
    rows = []
    for run in runs:
        rate = run.fps * gflop
        peak = peaks.get(run.precision)
        share = f"{100 * rate / peak:.0f}% of {run.precision}" if peak else run.precision
        rows.append(
            (
                run.label,
                str(run.frames),
                f"{run.wall_s:.1f}",
                f"{run.wall_s - run.work_s:.1f}",
                f"{run.fps:.2f}",
                f"{run.fps / baseline.fps:.2f}",
                f"{rate:.0f}",
                share,
                f"{run.peak_rss_mb:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def benchmark(args, work: Path) -> None:
    import torch

    import emonet_cli
    from emonet_cli.detection.benchmark import detector_throughput

    started = time.perf_counter()
    cores = usable_cores()
    flags = set((cpuinfo_field("flags") or "").split())
    shown = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    print(
        f"machine: {cpuinfo_field('model name') or platform.processor()}, {cores} usable cores, "
        f"{platform.system()} {platform.machine()}; Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"emonet-cli {emonet_cli.__version__}"
    )
    print(f"cpu flags: {', '.join(shown) or 'none of avx2, avx512f, avx512_bf16, amx_bf16'}")
    busy = cpu_busy()
    load_before = load_average()
    if busy is not None:
        print(f"cores busy before the start: {100 * busy:.0f}% (load average {load_before})")
        if busy > BUSY_SHARE:
            print("warning: other processes are using the CPU; timings will be low and noisy")

    size = 1024 if args.quick else 2048
    peaks = {p: matmul_peak(p, size, args.device, 0.5 if args.quick else 2.0) for p in PEAKS}
    gflop = model_gflop()
    print(
        f"matmul peak ({size}^3): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} "
        f"GFLOP/s; EmoNet: {gflop:.1f} GFLOP per 256x256 frame (FlopCounterMode), so at most "
        f"{peaks['fp32'] / gflop:.1f} frames/s in fp32, {peaks['bf16'] / gflop:.1f} in bf16"
    )

    args.weights = args.weights or standin_weights(work)
    short = make_inputs(work, args.frames)
    long = make_inputs(work, args.long_frames)
    configs = {
        "a": ("(a) published loop, fp32, batch 1", measure_baseline, ()),
        "b": ("(b) emonet analyze (defaults)", measure_cli, ()),
        "c": ("(c) emonet analyze --precision fp32", measure_cli, ("--precision", "fp32")),
        "d": ("(d) emonet analyze --detect (defaults)", measure_cli, ("--detect",)),
    }
    best: dict[str, Run] = {}
    for round_index in range(args.repeat):
        for key, (label, measure, extra) in configs.items():
            kwargs = {"extra": extra} if extra else {}
            run = measure(label, *short, args, work, **kwargs)
            print(
                f"  round {round_index + 1}, {label}: {run.fps:.2f} frames/s, "
                f"{run.peak_rss_mb:.0f} MB",
                flush=True,
            )
            if key not in best or run.fps > best[key].fps:
                best[key] = run
    long_run = measure_cli(f"{configs['b'][0]}, long video", *long, args, work)
    print(f"  {long_run.label}: {long_run.fps:.2f} frames/s, {long_run.peak_rss_mb:.0f} MB")

    baseline, default, fp32, detected = best["a"], best["b"], best["c"], best["d"]
    print()
    print(format_table([baseline, default, fp32, detected, long_run], baseline, gflop, peaks))
    print()
    detector_fps = detector_throughput(
        "fp32", frames=8 if args.quick else 64, device=args.device, repeat=args.repeat
    )["frames_per_s_best"]
    # Seconds per frame with detection minus without, as a share of those with it.
    share = 1.0 - detected.fps / default.fps
    print(
        f"detector alone (BlazeFace, fp32, 1280x720, batches of 16): {detector_fps:.1f} frames/s; "
        f"detecting instead of reading the box stream takes {100 * share:.0f}% of "
        f"(d)'s time ((d) {detected.fps:.2f} vs (b) {default.fps:.2f} frames/s)"
    )
    default_ratio, fp32_ratio = default.fps / baseline.fps, fp32.fps / baseline.fps
    growth = long_run.peak_rss_mb - default.peak_rss_mb
    print(
        f"(b)/(a) = {default_ratio:.2f}x with {default.precision} (target >= "
        f"{TARGET_DEFAULT:g}x: {verdict(default_ratio >= TARGET_DEFAULT)})"
    )
    print(
        f"(c)/(a) = {fp32_ratio:.2f}x (target >= {TARGET_FP32:g}x: "
        f"{verdict(fp32_ratio >= TARGET_FP32)})"
    )
    print(
        f"peak RSS of (b): {default.peak_rss_mb:.0f} MB at {default.frames} frames, "
        f"{long_run.peak_rss_mb:.0f} MB at {long_run.frames} frames, {growth:+.0f} MB "
        f"(target within {TARGET_RSS_MB:g} MB: {verdict(abs(growth) <= TARGET_RSS_MB)})"
    )
    inputs, frames = (2, 4) if args.quick else (20, 10)
    local_s, workers_s = measure_cluster(args, work, inputs, frames)
    print(
        f"{inputs} clips of 96x72, {frames} frames, fp32: local {local_s:.1f} s, "
        f"--workers 2 {workers_s:.1f} s, {(workers_s - local_s) / inputs:+.2f} s per input "
        f"({100 * (workers_s / local_s - 1):+.0f}%; the cluster's start included)"
    )
    if args.quick:
        print("--quick is a smoke run: with so few frames, startup dominates the ratios")
    print(
        f"frames/s: end to end, process start to outputs written (startup: interpreter, "
        f"imports, weights); best of {args.repeat} interleaved round(s); load average "
        f"{load_before} before, {load_average()} after; the benchmark took "
        f"{time.perf_counter() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames of the short video")
    parser.add_argument("--long-frames", type=int, default=1500, help="frames of the long video")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of (a), (b), (c), interleaved; best counts"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 8 and 16 frames, short matmuls"
    )
    parser.add_argument("--device", default="auto", help="device for every configuration")
    parser.add_argument("--weights", type=Path, help="weights file  [default: stand-in weights]")
    parser.add_argument(
        "--workdir", type=Path, help="keep videos, weights and outputs here  [default: temporary]"
    )
    parser.add_argument("--baseline-child", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(REPO))

    if args.baseline_child:
        print(json.dumps(run_baseline(*args.baseline_child, args.device)))
        return 0
    if args.quick:
        args.frames, args.long_frames, args.repeat = 8, 16, 1
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        benchmark(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="emonet-bench-") as tmp:
            benchmark(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
