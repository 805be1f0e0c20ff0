"""`emonet report` over many results: seconds and peak RSS for 100 and 300 (or --inputs)
results, each a copy of one real analysis lengthened to --frames rows, one in 25 a failure.

    .venv/bin/python benchmarks/report_speed.py                  # 100 and 300 x 1,500 frames
    .venv/bin/python benchmarks/report_speed.py --inputs 1000 --frames 3000 --workdir /tmp/r

The analysis: `make demo`'s sample (125 frames at 25 fps, a second without a face) through
`emonet analyze` with the tests' stand-in weights (tests/standin.py), once. Its CSV is then
repeated, frame numbers and times continued, up to --frames rows (1,500: a minute at 25 fps),
and each copy gets its summary (frames counted anew) and annotations as `recNNNN.*`. Each report
runs in a process of its own; its peak RSS is the child's (wait4). Peak RSS at 300 against 100
shows that memory does not grow with the inputs beyond the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def lengthened(analysed: Path, frames: int, folder: Path) -> tuple[Path, Path]:
    """`long.csv` and `long.emonet.json`: the sample's rows repeated up to `frames` rows."""
    with open(analysed / "astronaut.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    step = float(rows[1][1]) - float(rows[0][1])
    folder.mkdir(parents=True, exist_ok=True)
    faces = 0
    with open(folder / "long.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for i in range(frames):
            row = list(rows[i % len(rows)])
            row[0], row[1] = str(i), f"{i * step:.6f}"
            faces += row[2] == "1"
            writer.writerow(row)
    summary = json.loads((analysed / "astronaut.emonet.json").read_text())
    summary.update(frames=frames, frames_with_face=faces)
    (folder / "long.emonet.json").write_text(json.dumps(summary, indent=2))
    return folder / "long.csv", folder / "long.emonet.json"


def results_folder(analysed: Path, long_csv: Path, long_json: Path, inputs: int, dest: Path):
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
        shutil.copyfile(long_csv, folder / f"{stem}.csv")
        for path in annotations:
            shutil.copyfile(path, folder / path.name.replace("astronaut", stem, 1))
        summary["input"] = f"/data/{stem}.mp4"
        (folder / f"{stem}.emonet.json").write_text(json.dumps(summary))


def timed_report(folder: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `emonet report FOLDER` in its own process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "emonet_cli", "report", str(folder), "-q"],
                            stdout=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"emonet report {folder} failed")
    return seconds, usage.ru_maxrss / 1024


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
    long_csv, long_json = lengthened(analysed, args.frames, work / "long")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"each result: {args.frames} frames ({long_csv.stat().st_size / 1e3:.0f} kB of CSV)")
    for inputs in sorted({min(100, args.inputs), args.inputs}):
        dest = work / f"results-{inputs}"
        shutil.rmtree(dest, ignore_errors=True)
        results_folder(analysed, long_csv, long_json, inputs, dest)
        seconds, rss = timed_report(dest)
        page = (dest / "report.html").stat().st_size / 1e6
        rows = sum(1 for _ in open(dest / "index.csv")) - 1
        print(
            f"  {inputs:5d} results: {seconds:6.2f} s wall ({inputs / seconds:6.1f} results/s, "
            f"{inputs * args.frames / seconds / 1e3:6.0f} k rows/s), peak RSS {rss:6.1f} MB, "
            f"index.csv {rows} rows, report.html {page:.2f} MB"
        )


if __name__ == "__main__":
    main()
