"""The `emonet` command line: option parsing and printing only; the work lives in the modules."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from emonet_cli import __version__
from emonet_cli.errors import EmonetError

if TYPE_CHECKING:
    from emonet_cli.boxes import BoxSource
    from emonet_cli.inference import Predictor

log = logging.getLogger("emonet")


class EmonetGroup(click.Group):
    """Turns errors a user can cause into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmonetError as exc:
            # The same form as the per-input errors that analyze logs and goes on after.
            click.echo(f"emonet: error: {exc}", err=True)
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


@click.group(cls=EmonetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emonet")
def cli() -> None:
    """Facial affect (expression, valence, arousal, landmarks) in videos with EmoNet."""
    setup_logging()


# --- options shared by the commands that run the model -----------------------------------------

# The same as inference.PRECISIONS (a test checks it); spelled out so that `--help` needs no torch.
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")


def box_options(f):
    """--bbox / --bbox-dir / --full-frame: where the faces are."""
    f = click.option(
        "--full-frame", is_flag=True, help="Each frame is already a face crop (e.g. AffectNet)."
    )(f)
    f = click.option(
        "--bbox-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder with DIR/NAME.stream or DIR/NAME.csv for each input NAME.ext.",
    )(f)
    return click.option(
        "--bbox",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Face boxes: SSI .stream, CSV frame,x1,y1,x2,y2[,conf], or an "
        "'IMAGE x1 y1 x2 y2' list (which may cover several images).",
    )(f)


def model_options(batch_size: int = 8, batch_help: str = "Faces per model batch."):
    """--nclass / --weights / --offline / --batch-size / --device / --precision."""

    def decorate(f):
        for option in reversed(
            [
                click.option(
                    "--nclass",
                    type=click.Choice(["5", "8"]),
                    help="Expression classes: 5 or 8.  [default: from --weights, else 8]",
                ),
                click.option(
                    "--weights",
                    type=click.Path(dir_okay=False, path_type=Path),
                    help="A weights file (state dict) instead of the published weights.",
                ),
                click.option("--offline", is_flag=True, help="Never download weights."),
                click.option(
                    "--batch-size",
                    type=click.IntRange(min=1),
                    default=batch_size,
                    show_default=True,
                    help=batch_help,
                ),
                click.option(
                    "--device", default="auto", show_default=True, help="auto, cpu, cuda[:N], mps."
                ),
                click.option(
                    "--precision",
                    type=click.Choice(PRECISION_CHOICES),
                    default="auto",
                    show_default=True,
                    help="auto: bf16 on CUDA and on CPUs with fast bf16, fp32 otherwise.",
                ),
            ]
        ):
            f = option(f)
        return f

    return decorate


# --- emonet weights -----------------------------------------------------------------------------
# emonet_cli.weights imports torch; importing it inside the commands keeps `emonet --help` quick.


@cli.group("weights")
def weights_group() -> None:
    """Download, locate and verify the EmoNet weights.

    Looked for in order: --weights FILE, $EMONET_WEIGHTS (file or folder), the checkout's
    weights/ folder, then the user cache folder, where downloads go."""


@weights_group.command("fetch")
@click.option(
    "--nclass",
    type=click.Choice(["5", "8", "all"]),
    default="8",
    show_default=True,
    help="Which model: 5 or 8 expression classes, or both.",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to download into.  [default: the user cache folder]",
)
def weights_fetch(nclass: str, dest: Path | None) -> None:
    """Download the published weights and check their SHA-256.

    Prints the path of each file; a verified file already there is not downloaded again."""
    from emonet_cli.weights import fetch_weights

    for n in (5, 8) if nclass == "all" else (int(nclass),):
        click.echo(fetch_weights(n, dest_dir=dest))


@weights_group.command("list")
def weights_list() -> None:
    """Show where the weights are looked for and what is there.

    Places are listed in resolution order; '*' marks the file that would be used, and
    'verified' means its SHA-256 is the published one."""
    from emonet_cli.weights import NCLASS_CHOICES, cache_dir, expected_weights, weights_inventory

    for n in NCLASS_CHOICES:
        expected = expected_weights(n)
        click.echo(f"{n}-class model: {expected.filename}, SHA-256 {expected.sha256}")
        rows = weights_inventory(n)
        source_width = max(len(row.source) for row in rows)
        path_width = max(len(str(row.path)) for row in rows)
        for row in rows:
            marker = "*" if row.selected else " "
            line = f"  {marker} {row.source:<{source_width}}  {str(row.path):<{path_width}}  "
            click.echo(line + row.verdict)
        if not any(row.selected for row in rows):
            click.echo(
                f"  none found: `emonet weights fetch --nclass {n}` downloads it to {cache_dir()}"
            )


@weights_group.command("path")
@click.option(
    "--nclass",
    type=click.Choice(["5", "8"]),
    default="8",
    show_default=True,
    help="Which model: 5 or 8 expression classes.",
)
def weights_path(nclass: str) -> None:
    """Print the weights file that would be used (exit 1 if none)."""
    from emonet_cli.weights import find_weights, weights_not_found

    found = find_weights(int(nclass))
    if found is None:
        raise weights_not_found(int(nclass))
    click.echo(found)


# --- end of emonet weights ---------------------------------------------------------------------


# --- emonet analyze ----------------------------------------------------------------------------


def find_box_source(
    media: Path,
    bbox: Path | None,
    bbox_dir: Path | None,
    full_frame: bool,
    subfolder: Path = Path("."),
) -> BoxSource:
    """The box source of one input, from --bbox, --bbox-dir (DIR/SUBFOLDER/NAME.stream or .csv
    for an input found in a sub-folder of a folder input, else DIR/NAME.*) or --full-frame."""
    from emonet_cli.boxes import BoxSource
    from emonet_cli.errors import InputError

    if full_frame:
        return BoxSource(full_frame=True)
    if bbox is not None:
        return BoxSource(path=bbox)
    if bbox_dir is not None:
        for folder in dict.fromkeys([bbox_dir / subfolder, bbox_dir]):
            for suffix in (".stream", ".csv"):
                candidate = folder / f"{media.stem}{suffix}"
                if candidate.is_file():
                    return BoxSource(path=candidate)
        raise InputError(
            f"{media}: no face boxes in {bbox_dir} (looked for {media.stem}.stream "
            f"and {media.stem}.csv)"
        )
    raise InputError(f"{media}: no face boxes: give --bbox, --bbox-dir or --full-frame")


def progress_bar(enabled: bool, name: str):
    """A tqdm bar on stderr, only on a terminal (pipes and logs stay clean)."""
    import sys

    from tqdm import tqdm

    return tqdm(desc=name, unit="frame", disable=not (enabled and sys.stderr.isatty()), leave=False)


@cli.command("analyze")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@box_options
@model_options()
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-folders of folder inputs.")
@click.option(
    "--min-face-conf",
    type=click.FloatRange(0.0, 1.0),
    default=0.65,
    show_default=True,
    help="Boxes below this confidence count as no face.",
)
@click.option(
    "--smooth",
    is_flag=True,
    help="Causal weighted average over the last 5 frames (the published option).",
)
@click.option(
    "--merge", is_flag=True, help="Join runs of the same expression into one annotation segment."
)
@click.option("--landmarks", is_flag=True, help="Also write S.landmarks.stream (68 x,y).")
@click.option("--embeddings", is_flag=True, help="Also write S.embedding.stream (256 values).")
@click.option(
    "--annotation-format",
    type=click.Choice(["ascii", "binary"]),
    default="ascii",
    show_default=True,
    help="Data format of the NOVA annotation files.",
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write results.  [default: beside each input]",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip inputs whose results are complete (resumes a folder run).",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first input that fails.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per input on stdout instead of a line.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, no warnings.")
def analyze(
    inputs,
    bbox,
    bbox_dir,
    full_frame,
    recursive,
    nclass,
    weights,
    offline,
    batch_size,
    device,
    precision,
    min_face_conf,
    smooth,
    merge,
    landmarks,
    embeddings,
    annotation_format,
    output_dir,
    skip_existing,
    fail_fast,
    as_json,
    quiet,
) -> None:
    """Analyse videos, images or folders of them; write per-frame results for each input.

    For an input S.ext: S.csv, S.expression/.valence/.arousal.annotation (NOVA, videos only),
    optionally S.landmarks.stream and S.embedding.stream (SSI), and S.emonet.json (summary and
    provenance, written last). Exit status: 0 all inputs done, 1 any failed, 2 usage error."""
    import json
    import signal
    from dataclasses import replace

    from emonet_cli.pipeline import AnalysisSettings, OutputOptions, analyze_file, is_complete
    from emonet_cli.video import find_media

    setup_logging(quiet)
    if sum([bbox is not None, bbox_dir is not None, full_frame]) > 1:
        raise click.UsageError("give only one of --bbox, --bbox-dir and --full-frame")
    media = find_media(list(inputs), recursive)
    if bbox is not None and len(media) > 1 and bbox.suffix.lower() in (".stream", ".csv"):
        raise click.UsageError("--bbox takes one input; use --bbox-dir for several")
    if not media:
        raise click.UsageError("no video or image found in the given folders")
    # A polite kill (SIGTERM) unwinds like Ctrl-C, so temporary files are removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    options = OutputOptions(output_dir, landmarks, embeddings, merge, annotation_format.upper())
    settings = AnalysisSettings(batch_size, min_face_conf, smooth)
    predictor = provenance = None
    failures = 0

    def report(document: dict, line: str) -> None:
        click.echo(json.dumps(document) if as_json else line)

    for path, subfolder in media:
        if output_dir is not None:  # mirror the input folder tree: no clashes between names
            options = replace(options, directory=output_dir / subfolder)
        if skip_existing and is_complete(path, options):
            report({"input": str(path), "status": "skipped"}, f"skipped {path} (results exist)")
            continue
        if predictor is None:  # loaded on first need; a weights problem stops the whole run
            predictor, provenance = load_predictor(
                weights, nclass, offline, device, precision, quiet
            )
        try:
            source = find_box_source(path, bbox, bbox_dir, full_frame, subfolder)
            with progress_bar(not quiet, path.name) as bar:
                result = analyze_file(
                    path,
                    predictor,
                    source,
                    settings,
                    options,
                    provenance=provenance,
                    on_start=lambda info, bar=bar: setattr(bar, "total", info.frame_count),
                    on_batch=bar.update,
                    on_warning=log.warning,
                )
        except EmonetError as exc:
            failures += 1
            log.error("%s", exc)
            if as_json:
                click.echo(json.dumps({"input": str(path), "status": "error", "error": str(exc)}))
            if fail_fast:
                break
            continue
        summary = result.summary
        report(
            {
                "input": str(path),
                "status": "ok",
                "summary": str(result.outputs[-1]),
                "outputs": [str(p) for p in result.outputs],
                "frames": summary["frames"],
                "frames_with_face": summary["frames_with_face"],
                "seconds": summary["seconds"],
            },
            f"{path} -> {result.outputs[-1]} ({summary['frames']} frames, "
            f"{summary['frames_with_face']} with a face, {summary['seconds']:.1f} s)",
        )
    if failures:
        raise SystemExit(1)


def load_predictor(
    weights: Path | None,
    nclass: str | None,
    offline: bool,
    device: str,
    precision: str,
    quiet: bool,
) -> tuple[Predictor, dict]:
    """The model ready to run, and what the summary JSON records about it."""
    from emonet_cli.checkpoint import load_model
    from emonet_cli.inference import Predictor

    loaded = load_model(weights, int(nclass) if nclass else None, offline, progress=not quiet)
    provenance = {
        "tool": "emonet-cli",
        "version": __version__,
        "weights": str(loaded.path),
        "weights_sha256": loaded.sha256,
    }
    return Predictor(loaded.model, device, precision), provenance


# --- end of emonet analyze ---------------------------------------------------------------------


# --- emonet evaluate ----------------------------------------------------------------------------
UNREADABLE_SHOWN = 10  # unreadable images named on stderr; the JSON report lists them all


@cli.command("evaluate")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--images",
    "images_root",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder that the image paths in LABELS are relative to.",
)
@model_options(32, "Faces per model batch; with --flip the batch also holds their mirrors.")
@click.option(
    "--flip/--no-flip",
    default=True,
    show_default=True,
    help="Average valence and arousal over each face and its mirror, as the paper did.",
)
@click.option(
    "--cleaned/--all",
    default=True,
    show_default=True,
    help="Drop rows whose valence and arousal contradict their expression (the paper's "
    "automatic cleaning of the test set), or score all rows.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report (counts, scores, confusion matrix) as JSON here.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Score only the first N rows that pass the label filters, for a quick check.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no warnings.")
def evaluate_command(
    labels: Path,
    images_root: Path,
    nclass: str | None,
    weights: Path | None,
    flip: bool,
    cleaned: bool,
    output: Path | None,
    batch_size: int,
    device: str,
    precision: str,
    offline: bool,
    limit: int | None,
    quiet: bool,
) -> None:
    """Score a model on labelled faces and print the EmoNet paper's table: ACC of the
    expression; CCC, PCC, RMSE and SAGR of valence and arousal.

    LABELS is AffectNet's CSV (subDirectory_filePath, face_x, face_y, face_width, face_height,
    facial_landmarks, expression, valence, arousal) or a CSV of
    image,expression,valence,arousal[,x1,y1,x2,y2]. Expressions are AffectNet ids (0 Neutral,
    1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt; 8-10 are skipped);
    a valence or arousal of -2 means missing and skips the row. The face box comes from the
    landmarks, else the face rectangle or x1..y2; without one the image is taken as a face
    crop. Unreadable images are skipped and listed."""
    import sys

    from emonet_cli.checkpoint import load_model
    from emonet_cli.evaluate import (
        evaluate,
        evaluation_report,
        format_table,
        read_labels,
        write_report,
    )
    from emonet_cli.inference import Predictor

    setup_logging(quiet)
    rows = read_labels(labels)
    show_progress = not quiet and sys.stderr.isatty()
    loaded = load_model(
        weights, int(nclass) if nclass else None, offline=offline, progress=show_progress
    )
    predictor = Predictor(loaded.model, device=device, precision=precision)
    evaluation = evaluate(
        rows,
        images_root,
        predictor,
        flip=flip,
        cleaned=cleaned,
        batch_size=batch_size,
        limit=limit,
        progress=show_progress,
    )
    for item in evaluation.unreadable[:UNREADABLE_SHOWN]:
        log.warning("skipped %s (line %d): %s", item.path, item.line, item.reason)
    if len(evaluation.unreadable) > UNREADABLE_SHOWN:
        log.warning(
            "skipped %d more unreadable images%s",
            len(evaluation.unreadable) - UNREADABLE_SHOWN,
            f"; {output} lists them all" if output else "; -o REPORT.json lists them all",
        )
    click.echo(format_table(evaluation))
    if output is not None:
        report = evaluation_report(
            evaluation,
            labels=labels,
            images_root=images_root,
            weights_path=loaded.path,
            weights_sha256=loaded.sha256,
        )
        write_report(output, report)
        log.info("report written to %s", output)


# --- end of emonet evaluate ---------------------------------------------------------------------


# --- emonet render and emonet plot ---------------------------------------------------------------


@cli.command("render")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@box_options
@model_options()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The MP4 to write.  [default: S.render.mp4 beside the video S.ext]",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where `emonet analyze` wrote S.csv and S.landmarks.stream.  [default: beside the video]",
)
@click.option("--reanalyze", is_flag=True, help="Run the model even where results exist.")
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Render every Nth frame; the output plays at the frame rate / N.",
)
@click.option(
    "--max-width",
    type=click.IntRange(min=64),
    help="Scale the output (frame and panel) down to at most this many pixels wide.",
)
@click.option(
    "--min-face-conf",
    type=click.FloatRange(0.0, 1.0),
    default=0.65,
    show_default=True,
    help="Boxes below this confidence count as no face (when the model runs).",
)
@click.option("--smooth", is_flag=True, help="Smooth the model's outputs, as analyze --smooth.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no warnings.")
def render_command(video, bbox, bbox_dir, full_frame, output, results_dir, reanalyze, every,
                   max_width, nclass, weights, offline, batch_size, device, precision,
                   min_face_conf, smooth, quiet) -> None:  # fmt: skip
    """Write the video with its results drawn on it: face box, expression and landmarks on the
    frame; beside it a bar per class and the valence/arousal circumplex with the last second's
    trail. Frames without a face say so.

    The results are S.csv and S.landmarks.stream from `emonet analyze` when they cover every
    frame; otherwise the model runs (with the model options) and nothing else is written.
    Exit status: 0 done, 1 failed, 2 usage error."""
    import signal

    from emonet_cli.pipeline import AnalysisSettings
    from emonet_cli.render import render_file

    setup_logging(quiet)
    if sum([bbox is not None, bbox_dir is not None, full_frame]) > 1:
        raise click.UsageError("give only one of --bbox, --bbox-dir and --full-frame")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    source = find_box_source(video, bbox, bbox_dir, full_frame)
    output = output or video.with_name(f"{video.stem}.render.mp4")

    def predictor() -> Predictor:
        return load_predictor(weights, nclass, offline, device, precision, quiet)[0]

    with progress_bar(not quiet, video.name) as bar:
        report = render_file(
            video, output, source, predictor, AnalysisSettings(batch_size, min_face_conf, smooth),
            results_dir=results_dir, reanalyze=reanalyze, every=every, max_width=max_width,
            on_start=lambda info: setattr(bar, "total", info.frame_count),
            on_frame=bar.update, on_warning=log.warning,
        )  # fmt: skip
    width, height = report.size
    click.echo(
        f"{video} -> {report.output} ({report.frames} frames at {report.fps:g} fps, "
        f"{width}x{height}, results from {report.results})"
    )


@cli.command("plot")
@click.argument("csvs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The picture to write: .png, .svg or .pdf.  [default: S.plot.png beside S.csv]",
)
@click.option(
    "--width",
    type=click.IntRange(min=400),
    default=1400,
    show_default=True,
    help="Width in pixels (the layout scales with it); each CSV adds a row of width x 0.24.",
)
@click.option("-q", "--quiet", is_flag=True, help="No warnings.")
def plot_command(csvs: tuple[Path, ...], output: Path | None, width: int, quiet: bool) -> None:
    """Draw the results of one or more `emonet analyze` CSVs into one picture, one row each:
    valence and arousal over time with the expression as a coloured ribbon under them and the
    no-face spans shaded, and beside them the valence/arousal scatter on the circumplex.

    Needs matplotlib: pip install 'emonet-cli[plot]'. Exit status: 0 done, 1 failed, 2 usage
    error."""
    from emonet_cli.plot import plot_results

    setup_logging(quiet)
    first = csvs[0]
    output = output or first.with_name(f"{first.stem}.plot.png")
    click.echo(plot_results(list(csvs), output, width=width))


# --- end of emonet render and emonet plot --------------------------------------------------------


def main() -> None:
    cli(prog_name="emonet")
