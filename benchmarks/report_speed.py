"""`emonet report` over many results: seconds and peak RSS for 100 and 300 (or --inputs)
results, each a copy of one real analysis lengthened to --frames rows, one in 25 a failure;
each folder reported twice, with `--no-frames` (the report without frames.parquet) and
without (frames.parquet too), and the ratio of their CPU times printed (issue 40: at most 2).

    .venv/bin/python benchmarks/report_speed.py                  # 100 and 300 x 1,500 frames
    .venv/bin/python benchmarks/report_speed.py --inputs 1000 --frames 3000 --workdir /tmp/r

The analysis: `make demo`'s sample (125 frames at 25 fps, a second without a face) through
`emonet analyze` with the tests' stand-in weights (tests/standin.py), once. Its CSV is then
repeated, frame numbers and times continued, up to --frames rows (1,500: a minute at 25 fps),
and each copy gets its summary (frames counted anew) and annotations as `recNNNN.*`. Each report
runs in a process of its own; its CPU time (user + system) and peak RSS are the child's (wait4):
CPU time rather than wall time, since the machines we measure on are shared. Peak RSS at 300
against 100 shows that memory does not grow with the inputs beyond the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = 50  # different CSVs among the results (each a jittered copy)
EXACT_COLUMNS = ("face", "expression", "usable")  # and frame, time: not jittered
sys.path.insert(0, str(ROOT / "tests"))


def analysed_sample(work: Path) -> Path:
    """The demo sample analysed with stand-in weights; the folder of its results. Made in a
    process of its own: the peak RSS of this one (torch loaded) would pass on to the reports'."""
    out = work / "analysed"
    if not (out / "astronaut.emonet.json").exists():
        subprocess.run([sys.executable, __file__, "--prepare", "--workdir", str(work)], check=True)
    return out


def prepare(work: Path) -> None:
    from standin import save_standin

    from emonet_cli.demo import make_sample

    out = work / "analysed"
    weights = save_standin(work / "emonet_8.pth", 8)
    sample = make_sample(work / "sample")
    command = [sys.executable, "-m", "emonet_cli", "analyze", str(sample.video), "--bbox",
               str(sample.boxes), "--weights", str(weights), "-o", str(out), "-q"]  # fmt: skip
    subprocess.run(command, check=True)


def lengthened(analysed: Path, frames: int, folder: Path) -> tuple[list[Path], Path]:
    """VARIANTS copies of `long.csv` and one `long.emonet.json`: the sample's rows repeated up
    to `frames` rows, each copy's values (but frame, time, face and expression) jittered by 1%
    as float32, so that a Parquet file of them compresses as real results would, not as one
    clip repeated."""
    with open(analysed / "astronaut.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    step = float(rows[1][1]) - float(rows[0][1])
    folder.mkdir(parents=True, exist_ok=True)
    jittered = [j for j, name in enumerate(header) if j > 1 and name not in EXACT_COLUMNS]
    rng = np.random.default_rng(40)
    paths = []
    for variant in range(VARIANTS):
        faces = 0
        path = folder / f"long{variant}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            noise = 1 + 0.01 * rng.standard_normal((frames, len(header)))
            for i in range(frames):
                row = list(rows[i % len(rows)])
                row[0], row[1] = str(i), f"{i * step:.6f}"
                for j in jittered:
                    value = float(row[j]) * noise[i, j] if _number(row[j]) else None
                    if value is not None and math.isfinite(value) and value != 0:
                        row[j] = np.format_float_positional(np.float32(value), unique=True)
                faces += row[2] == "1"
                writer.writerow(row)
        paths.append(path)
    summary = json.loads((analysed / "astronaut.emonet.json").read_text())
    summary.update(frames=frames, frames_with_face=faces)
    (folder / "long.emonet.json").write_text(json.dumps(summary, indent=2))
    return paths, folder / "long.emonet.json"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def results_folder(
    analysed: Path, long_csvs: list[Path], long_json: Path, inputs: int, dest: Path
) -> None:
    """`inputs` results as `recNNNN.*` in sub-folders of 100; every 25th a failure record."""
    summary = json.loads(long_json.read_text())
    annotations = sorted(analysed.glob("astronaut.*.annotation*"))
    for n in range(inputs):
        folder = dest / f"part{n // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"rec{n:04d}"
        if n % 25 == 24:
            record = {"input": f"/data/{stem}.mp4", "status": "failed", "model": "emonet",
                      "error": f"/data/{stem}.mp4: not a readable video"}  # fmt: skip
            (folder / f"{stem}.failed.json").write_text(json.dumps(record))
            continue
        shutil.copyfile(long_csvs[n % len(long_csvs)], folder / f"{stem}.csv")
        for path in annotations:
            shutil.copyfile(path, folder / path.name.replace("astronaut", stem, 1))
        summary["input"] = f"/data/{stem}.mp4"
        (folder / f"{stem}.emonet.json").write_text(json.dumps(summary))


def timed_report(folder: Path, pyarrow: bool = True) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of `emonet report FOLDER` in its own
    process; without `pyarrow`, as if it were not installed."""
    from cli_helpers import WITHOUT_PYARROW  # as before frames.parquet: no pyarrow loaded

    started = time.perf_counter()
    program = ["-m", "emonet_cli"] if pyarrow else ["-c", WITHOUT_PYARROW]
    command = [sys.executable, *program, "report", str(folder), "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"emonet report {folder} failed")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=300)
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="emonet-report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.prepare:
        prepare(work)
        return
    analysed = analysed_sample(work)
    long_csvs, long_json = lengthened(analysed, args.frames, work / "long")
    long_csv = long_csvs[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"each result: {args.frames} frames ({long_csv.stat().st_size / 1e3:.0f} kB of CSV)")
    for inputs in sorted({min(100, args.inputs), args.inputs}):
        dest = work / f"results-{inputs}"
        shutil.rmtree(dest, ignore_errors=True)
        results_folder(analysed, long_csvs, long_json, inputs, dest)
        seconds, cpu, rss = timed_report(dest, pyarrow=False)
        page = (dest / "report.html").stat().st_size / 1e6
        rows = sum(1 for _ in open(dest / "index.csv")) - 1
        print(
            f"  {inputs:5d} results, no Parquet: {seconds:6.2f} s wall, {cpu:6.2f} s CPU "
            f"({inputs * args.frames / cpu / 1e3:6.0f} k rows/s), peak RSS {rss:6.1f} MB, "
            f"index.csv {rows} rows, report.html {page:.2f} MB"
        )
        seconds, frames_cpu, rss = timed_report(dest)
        frames = dest / "frames.parquet"
        print(
            f"  {inputs:5d} results, with frames.parquet: {seconds:6.2f} s wall, "
            f"{frames_cpu:6.2f} s CPU, peak RSS {rss:6.1f} MB, frames.parquet "
            f"{frames.stat().st_size / 1e6:.1f} MB ({parquet_rows(frames)} rows, "
            f"{long_csv.stat().st_size * (inputs - inputs // 25) / 1e6:.0f} MB of CSV)"
        )
        print(f"  {inputs:5d} results: CPU time with frames.parquet / without Parquet: "
              f"{frames_cpu / cpu:.2f} (issue 40: at most 2)")  # fmt: skip


def parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


if __name__ == "__main__":
    main()
