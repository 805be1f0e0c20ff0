"""What the commands share: error reporting, logging, progress bars and the options that several
commands take. Nothing here imports torch, so `emonet --help` stays quick."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import traceback
from pathlib import Path

import click

from emonet_cli.cli.numbers import FiniteFloat, UsableLimitsType
from emonet_cli.constants import DEFAULT_MIN_FACE_CONF, PRECISIONS
from emonet_cli.errors import EmonetError
from emonet_cli.faces.quality import UsableLimits

log = logging.getLogger("emonet")

PRECISION_CHOICES = PRECISIONS


DEBUG_KEY = "emonet.debug"


class EmonetGroup(click.Group):
    """One rule for every command: an error ends as one line `emonet: error: ...` on stderr and
    exit status 1; the traceback of an unexpected one only with `emonet --debug`."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except EmonetError as exc:
            # The same form as the per-input errors that analyze logs and goes on after.
            message = str(exc)
        except OSError as exc:
            from emonet_cli.formats.fileio import describe_os_error

            message = describe_os_error(exc)
        except MemoryError:
            message = "out of memory"
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                traceback.print_exc()
            hint = "" if ctx.meta.get(DEBUG_KEY) else " (emonet --debug shows the traceback)"
            message = f"unexpected error: {type(exc).__name__}: {exc}{hint}"
        click.echo(f"emonet: error: {message}", err=True)
        ctx.exit(1)


class LogFormatter(logging.Formatter):
    """`emonet: warning: message`, in the style of compiler diagnostics."""

    def format(self, record: logging.LogRecord) -> str:
        return f"emonet: {record.levelname.lower()}: {record.getMessage()}"


def setup_logging(quiet: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def prepare_to_run(quiet: bool) -> None:
    """The process set-up of every command that decodes video or runs the model."""
    from emonet_cli.media.tuning import tune_process

    setup_logging(quiet)
    # A polite kill (SIGTERM) unwinds like Ctrl-C, so temporary files are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    tune_process()


def progress_bar(enabled: bool, name: str):
    """A tqdm bar on stderr, only on a terminal (pipes and logs stay clean)."""
    from tqdm import tqdm

    return tqdm(desc=name, unit="frame", disable=not (enabled and sys.stderr.isatty()), leave=False)


def counted(outcomes, total: int, enabled: bool):
    """`outcomes`, counted on one tqdm bar over the inputs (stderr, only on a terminal); closing
    it closes `outcomes`."""
    from tqdm import tqdm

    with (
        contextlib.closing(outcomes),
        tqdm(
            total=total, unit="input", disable=not (enabled and sys.stderr.isatty()), leave=False
        ) as bar,
    ):
        for outcome in outcomes:
            bar.update()
            yield outcome


def stack(*options):
    """One decorator applying `options` in the order they are listed (as in --help)."""

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def analysis_options(min_face_conf_help: str = "Boxes below this confidence count as no face."):
    """--min-face-conf / --smooth / --usable: how faces are turned into results."""
    return stack(
        click.option(
            "--min-face-conf",
            type=FiniteFloat(0.0, 1.0),
            default=DEFAULT_MIN_FACE_CONF,
            show_default=True,
            help=min_face_conf_help,
        ),
        click.option(
            "--smooth",
            is_flag=True,
            help="Causal weighted average over the last 5 frames (the published option).",
        ),
        click.option(
            "--usable",
            type=UsableLimitsType(),
            default=str(UsableLimits()),
            show_default=True,
            metavar="LIMITS",
            help="A frame is usable (the CSV's usable column) with a face within these limits: "
            "|yaw| and |pitch| in degrees at most, face size in pixels and sharpness at least; "
            "give any of them, e.g. --usable yaw=30,size=64. Where the pose is unknown only "
            "size and sharpness count.",
        ),
    )


def selection_options(f):
    """--start / --end / --sample-rate: which frames of a video are analysed."""
    return stack(
        click.option(
            "--start",
            type=FiniteFloat(min=0.0),
            metavar="SECONDS",
            help="Analyse from this time of each video on (frames at t >= SECONDS).",
        ),
        click.option(
            "--end",
            type=FiniteFloat(min=0.0, min_open=True),
            metavar="SECONDS",
            help="Analyse up to this time of each video (frames at t < SECONDS).",
        ),
        click.option(
            "--sample-rate",
            type=FiniteFloat(min=0.0, min_open=True),
            metavar="HZ",
            help="Analyse HZ frames per second: the first frame at or after each k / HZ "
            "seconds; the others are skipped. Annotations and streams are written at HZ.",
        ),
    )(f)


def selection_choice(start: float | None, end: float | None, sample_rate: float | None):
    """The FrameSelection of a command line; None when every frame is analysed."""
    from emonet_cli.media.selection import FrameSelection

    if start is None and end is None and sample_rate is None:
        return None
    if end is not None and start is not None and end <= start:
        raise click.UsageError(f"--end {end:g} must be after --start {start:g}")
    return FrameSelection(start=start or 0.0, end=end, sample_rate=sample_rate)


def quiet_option(help_text: str = "No progress bars, no warnings."):
    return click.option("-q", "--quiet", is_flag=True, help=help_text)


recursive_option = click.option(
    "-r", "--recursive", is_flag=True, help="Descend into sub-folders of folder inputs."
)


def output_dir_option(what: str):
    return click.option(
        "-o",
        "--output-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Where to write {what}.  [default: beside each input]",
    )


run_options = stack(
    click.option(
        "--skip-existing",
        is_flag=True,
        help="Skip inputs whose results are complete (resumes a folder run).",
    ),
    click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails."),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON object per input on stdout instead of a line.",
    ),
    click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors."),
)


def find_inputs(inputs, recursive: bool, output_dir: Path | None) -> list[tuple[Path, Path]]:
    """The media files of the command line's inputs; none, or two that would write the same
    output names, is a usage error (before any work starts)."""
    from emonet_cli.media.video import find_media
    from emonet_cli.run.runner import output_clashes

    media = find_media(list(inputs), recursive)
    if not media:
        raise click.UsageError("no video or image found in the given folders")
    clashes = output_clashes(media, output_dir)
    if clashes:
        first, second = clashes[0]
        more = f" (and {len(clashes) - 1} more pairs)" if len(clashes) > 1 else ""
        raise click.UsageError(
            f"{first} and {second} would write the same output files ({second.stem}.*){more}: "
            "analyse them in separate runs or with different -o folders"
        )
    return media


def report_outcomes(outcomes, as_json: bool, debug: bool) -> None:
    """One line (or JSON object) per finished input on stdout, errors on stderr; exit status 1
    when any input failed."""
    failures = 0
    for outcome in outcomes:
        if outcome.status == "error":
            failures += 1
            log.error("%s", outcome.error)
            if (debug or click.get_current_context().meta.get(DEBUG_KEY)) and outcome.details:
                click.echo(outcome.details, err=True, nl=False)
            if as_json:
                click.echo(json.dumps(outcome.as_json()))
        else:
            click.echo(json.dumps(outcome.as_json()) if as_json else outcome.line())
    if failures:
        raise SystemExit(1)
