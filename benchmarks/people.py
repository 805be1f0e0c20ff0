"""`make bench`'s several-people lines: frames/s and faces/s of `emonet analyze --max-faces 3`
on generated clips with 1, 2 and 3 people (demo.make_people_sample), each in its own process.

The faces of a stretch of frames go through the model together, so faces/s should stay about
the same whatever the number of people: a two-person video costs about twice a one-person one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from emonet_cli.demo import make_people_sample


def analyze_people(video: Path, weights: Path, device: str, out: Path) -> dict:
    """`emonet analyze VIDEO --max-faces 3` in a process of its own; its summary JSON."""
    command = [sys.executable, "-m", "emonet_cli", "analyze", str(video), "--max-faces", "3",
               "--weights", str(weights), "--device", device, "-o", str(out),
               "-q", "--json"]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{proc.stderr[-3000:]}")
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    return json.loads(Path(outcome["summary"]).read_text())


def people_lines(
    weights: Path, device: str, work: Path, frames: int = 50, counts: tuple[int, ...] = (1, 2, 3)
) -> list[str]:
    """One line per number of people: frames/s, faces analysed per second, and the cost per
    frame relative to one person (model time only: the analysis' own seconds)."""
    lines, one_person = [], None
    for people in counts:
        sample = make_people_sample(
            work / f"people{people}", people=people, seconds=frames / 10, fps=10, occlusion=None
        )
        summary = analyze_people(sample.video, weights, device, work / f"people{people}-out")
        faces = sum(person["frames_with_face"] for person in summary["people"])
        seconds = summary["seconds"]
        per_frame = seconds / summary["frames"]
        one_person = one_person or per_frame
        who = "person" if people == 1 else "people"
        lines.append(
            f"  {people} {who}: {summary['frames'] / seconds:5.2f} "
            f"frames/s, {faces / seconds:5.2f} faces/s ({faces} faces in {summary['frames']} "
            f"frames), {per_frame / one_person:4.2f}x the time per frame of one person"
        )
    return lines
