"""The options that say where the faces come from and whose they are, shared by analyze,
detect and render: box files, the detector, tracking several people and telling them apart
by face (a gallery of known people). Nothing here imports torch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from emonet_cli.cli.common import log, stack
from emonet_cli.cli.numbers import FiniteFloat
from emonet_cli.errors import EmonetError
from emonet_cli.faces.detection.postprocess import MIN_SCORE
from emonet_cli.faces.tracking import DEFAULT_PATIENCE_S


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


# The parameters of detection_choice that the detect options give a command (render has no
# --save-people).
DETECTION_PARAMETERS = (
    "min_score",
    "square",
    "repeat_last",
    "device",
    "max_faces",
    "track_patience",
    "track_confirm",
    "people_file",
    "save_people",
)


def command_detection():
    """detection_choice of the running command's own detection options (analyze, detect and
    render take the same ones), so that each command names them once, in its signature."""
    params = click.get_current_context().params
    return detection_choice(**{k: params[k] for k in DETECTION_PARAMETERS if k in params})


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
