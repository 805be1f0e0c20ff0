"""Running the real `emonet` command in a subprocess, as users and shell scripts do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_command(*args) -> list[str]:
    """The command line of `python -m emonet_cli ARGS...`."""
    return [sys.executable, "-m", "emonet_cli", *map(str, args)]


def cli_env(cache: Path | str = "/nonexistent-cache") -> dict[str, str]:
    """The environment of a CLI run: an empty weights cache, so nothing is downloaded by
    accident."""
    env = {**os.environ, "EMONET_CACHE": str(cache)}
    env.pop("EMONET_WEIGHTS", None)
    return env


def run_cli(*args, check: bool = True, cache: Path | str = "/nonexistent-cache", **kwargs):
    """`python -m emonet_cli ARGS...` with an empty weights cache; asserts that no traceback
    was printed and, with `check`, exit status 0."""
    proc = subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        env=cli_env(cache),
        timeout=300,
        **kwargs,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# `python -c WITHOUT_PYARROW ARGS...` is `emonet ARGS...` where `import pyarrow` fails, as where
# the parquet extra is not installed (tests/test_report_parquet.py; benchmarks/report_speed.py
# times the report before frames.parquet with it).
WITHOUT_PYARROW = """
import sys
class NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pyarrow":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoPyarrow())
from emonet_cli.cli import main
main()
"""
