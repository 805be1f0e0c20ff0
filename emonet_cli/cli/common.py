"""What the commands share: error reporting, logging, progress bars and the options that several
commands take. Nothing here imports torch, so `emonet --help` stays quick."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import click

from emonet_cli.cli.numbers import FiniteFloat, UsableLimitsType
from emonet_cli.constants import DEFAULT_MIN_FACE_CONF, PRECISIONS
from emonet_cli.errors import EmonetError
from emonet_cli.faces.detection.postprocess import MIN_SCORE
from emonet_cli.faces.quality import UsableLimits
from emonet_cli.faces.tracking import DEFAULT_PATIENCE_S

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


def box_options(f):
    """--bbox / --bbox-dir / --full-frame / --detect: where the faces are; without any, a box
    file beside the input, else the built-in detector."""
    return stack(
        click.option(
            "--bbox",
            type=click.Path(dir_okay=False, path_type=Path),
            multiple=True,
            help="Face boxes: SSI .stream, CSV frame,x1,y1,x2,y2[,conf] (with a face column: "
            "several people), or an 'IMAGE x1 y1 x2 y2' list (which may cover several "
            "images). Given several times: one box file per person.",
        ),
        click.option(
            "--bbox-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder with DIR/NAME.stream or DIR/NAME.csv for each input NAME.ext.",
        ),
        click.option(
            "--full-frame", is_flag=True, help="Each frame is already a face crop (e.g. AffectNet)."
        ),
        click.option(
            "--detect",
            is_flag=True,
            help="Find the faces with the built-in detector even where NAME.stream or NAME.csv "
            "sits beside the input.  [default without box options: that file, else detect]",
        ),
        detection_options,
    )(f)


def detection_options(f):
    """--min-score / --no-square / --no-repeat-last: DISCOVER's blazeface options."""
    return stack(
        click.option(
            "--min-score",
            type=FiniteFloat(0.0, 1.0),
            default=MIN_SCORE,
            show_default=True,
            help="Detector score a face needs (DISCOVER's min_score_thresh).",
        ),
        click.option(
            "--no-square",
            "square",
            flag_value=False,
            default=True,
            help="Keep the detector's box instead of stretching it square in pixels.",
        ),
        click.option(
            "--no-repeat-last",
            "repeat_last",
            flag_value=False,
            default=True,
            help="Frames without a face get zeros, not the last box at confidence 0.",
        ),
        click.option(
            "--max-faces",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Faces per frame. Above 1, every face up to this many is tracked and each "
            "person gets their own outputs (S.face1.*, S.face2.*, and S.faces.csv).",
        ),
        click.option(
            "--track-patience",
            type=FiniteFloat(min=0.0),
            default=DEFAULT_PATIENCE_S,
            show_default=True,
            help="With --max-faces above 1: seconds a tracked person may go unseen and keep "
            "their id.",
        ),
        click.option(
            "--track-confirm",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            metavar="FRAMES",
            help="With --max-faces above 1: frames in a row a new face must be detected to "
            "become a person; above 1, fleeting false detections make no person.",
        ),
        click.option(
            "--people",
            "people_file",
            type=click.Path(path_type=Path),
            help="With --max-faces above 1: known people, so that each gets their name in "
            "every input (S.NAME.*): a file of --save-people, or a folder of photos, one per "
            "person (alice.jpg, ...).",
        ),
    )(f)


save_people_option = click.option(
    "--save-people",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --max-faces above 1: write the people of this run (names and face "
    "descriptors) to this file, for --people.",
)


def detection_choice(
    min_score: float,
    square: bool,
    repeat_last: bool,
    device: str,
    max_faces: int = 1,
    track_patience: float = DEFAULT_PATIENCE_S,
    track_confirm: int = 1,
    people_file: Path | None = None,
    save_people: Path | None = None,
):
    """The DetectionSettings of a command line (the detector runs in float32: DISCOVER's
    numbers, and a small share of the time). With several people: identity where its extra
    is installed (else one warning for the run), the gallery of `people_file` read (a bad one
    is an error naming it, before anything is written)."""
    from emonet_cli.faces.detection.detector import DetectionSettings

    settings = DetectionSettings(
        min_score=min_score,
        square=square,
        repeat_last=repeat_last,
        device=device,
        max_faces=max_faces,
        track_patience=track_patience,
        track_confirm=track_confirm,
        identity=max_faces > 1,
    )
    if max_faces < 2:
        if people_file is not None or save_people is not None:
            log.warning("--people and --save-people tell people apart: they need --max-faces 2+")
        return settings
    from emonet_cli.faces.identity.descriptor import IdentityUnavailable, load_describer
    from emonet_cli.faces.people import missing_identity_warning

    try:
        describer = load_describer()
    except IdentityUnavailable as missing:
        if people_file is not None or save_people is not None:
            option = "--people" if people_file is not None else "--save-people"
            raise EmonetError(f"{option} needs face descriptors: {missing}") from None
        log.warning(missing_identity_warning(str(missing)))
        return replace(settings, identity=False)
    if people_file is None:
        return settings
    from emonet_cli.faces.identity.photos import open_gallery

    return replace(settings, gallery=open_gallery(people_file, describer, settings))


def saving_people(outcomes, path: Path | None):
    """`outcomes` as they come; once all are in, the people they described written to
    `path` (atomically), when given."""
    if path is None:
        yield from outcomes
        return
    from emonet_cli.faces.identity.photos import save_people

    reports = []
    for outcome in outcomes:
        reports.append(outcome.report)
        yield outcome
    saved = save_people(path, reports)
    if saved is not None:
        log.info("people of this run written to %s (rename them there)", saved)


def box_choice(
    bbox: Path | tuple[Path, ...] | None,
    bbox_dir: Path | None,
    full_frame: bool,
    detect: bool = False,
    detection=None,
    box_kind: str = "face",
):
    """The BoxOptions of a command line; more than one of them is a usage error."""
    from emonet_cli.faces import BoxOptions

    try:
        options = BoxOptions(
            bbox=bbox,
            bbox_dir=bbox_dir,
            full_frame=full_frame,
            detect=detect,
            detection=detection,
            box_kind=box_kind,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if detection is not None and detection.max_faces > 1 and (bbox or bbox_dir or full_frame):
        # A warning, not an error: scripts pass one set of options to every input.
        if full_frame:
            log.warning("--max-faces counts detected faces: with --full-frame the frame is one")
        else:
            log.warning(
                "--max-faces counts detected faces: with --bbox or --bbox-dir the box files "
                "decide the people (a file per person, or a CSV with a face column)"
            )
    return options


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
