"""The `emonet` command line: option parsing and printing only; the work lives in the modules.

Each command is a module of this package; none imports torch before it runs, so `emonet --help`
and the commands that never run the model start quickly."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import click

from emonet_cli import __version__
from emonet_cli.cli.analyze import analyze
from emonet_cli.cli.common import DEBUG_KEY, PRECISION_CHOICES, EmonetGroup, setup_logging
from emonet_cli.cli.detect import detect_command
from emonet_cli.cli.discover import discover_group
from emonet_cli.cli.evaluate import evaluate_command
from emonet_cli.cli.finetune import finetune_command
from emonet_cli.cli.render import plot_command, render_command
from emonet_cli.cli.report import report_command
from emonet_cli.cli.weights import weights_group
from emonet_cli.formats.names import show_names_on_stdio

__all__ = ["PRECISION_CHOICES", "cli", "main"]


@click.group(cls=EmonetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emonet")
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Read the facial expression, valence and arousal of the people in videos and images.

    Each command has its own --help; the documentation is README.md and docs/ in the
    repository.

    \b
    Examples:
      emonet analyze clip.mp4
      emonet analyze --help"""
    ctx.meta[DEBUG_KEY] = debug
    setup_logging()


COMMANDS = (
    analyze,
    detect_command,
    render_command,
    plot_command,
    report_command,
    evaluate_command,
    finetune_command,
    weights_group,
    discover_group,
)
for command in COMMANDS:
    cli.add_command(command)


def main() -> NoReturn:
    show_names_on_stdio()  # a file name that is not UTF-8 never fails a print
    try:
        cli(prog_name="emonet")
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code: int | str | None) -> NoReturn:
    """Exit with `code` as sys.exit would, but once torch is loaded without the interpreter's
    shutdown: tearing torch's modules down took 0.6 s of every run on 2 cores, after the last
    output was written and closed. Output streams and log handlers are flushed first."""
    if "torch" not in sys.modules:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`emonet ... | head`): nothing to keep
            pass
    os._exit(status)
