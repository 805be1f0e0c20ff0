"""Running the real `emonet` command in a subprocess, as users and shell scripts do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args, check: bool = True, cache: Path | str = "/nonexistent-cache", **kwargs):
    """`python -m emonet_cli ARGS...` with an empty weights cache (nothing is downloaded by
    accident); asserts that no traceback was printed and, with `check`, exit status 0."""
    env = {**os.environ, "EMONET_CACHE": str(cache)}
    env.pop("EMONET_WEIGHTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "emonet_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kwargs,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc
