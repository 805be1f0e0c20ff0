"""`emonet render` and `emonet plot`: looking at the results."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import (
    analysis_options,
    log,
    prepare_to_run,
    progress_bar,
    quiet_option,
    setup_logging,
)
from emonet_cli.cli.face_options import (
    box_choice,
    box_options,
    command_detection,
)
from emonet_cli.cli.model_options import model_choice, model_options
from emonet_cli.models.registry import families_giving

# render draws each frame's expression and its valence and arousal.
RENDERED_FAMILIES = families_giving("expression", "valence", "arousal")


@click.command("render")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@box_options
@model_options(families=RENDERED_FAMILIES)
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
@analysis_options("Boxes below this confidence count as no face (when the model runs).")
@quiet_option("No progress bar, no warnings.")
def render_command(video, bbox, bbox_dir, full_frame, detect, min_score, square, repeat_last,
                   max_faces, track_patience, track_confirm, people_file, output, results_dir,
                   reanalyze,
                   every, max_width, family, nclass, weights, offline, batch_size, device,
                   precision, min_face_conf, smooth, usable, quiet) -> None:  # fmt: skip
    """Make a copy of a video with the results drawn on it.

    On the frame: the face box, expression and landmarks; beside it a bar per class and the
    valence/arousal circumplex with the last second's trail. Frames without a face say so.

    The results are S.csv and S.landmarks.stream from `emonet analyze` when they cover every
    frame; otherwise the model runs (with the model options) and nothing else is written.
    Exit status: 0 done, 1 failed, 2 usage error. More: docs/analyze.md.

    \b
    Examples:
      emonet render clip.mp4
      emonet render clip.mp4 --bbox clip.stream --every 2 --max-width 960"""
    from emonet_cli.analysis.pipeline import AnalysisSettings
    from emonet_cli.views.render import render_file

    prepare_to_run(quiet)
    detection = command_detection()
    source = box_choice(bbox, bbox_dir, full_frame, detect, detection).source_for(video)
    output = output or video.with_name(f"{video.stem}.render.mp4")
    model = model_choice(weights, nclass, offline, device, precision, quiet, family)
    settings = AnalysisSettings(
        batch_size=batch_size, min_face_conf=min_face_conf, smooth=smooth, usable=usable
    )

    with progress_bar(not quiet, video.name) as bar:
        report = render_file(
            video, output, source, lambda: model.load()[0], settings,
            results_dir=results_dir, reanalyze=reanalyze, every=every, max_width=max_width,
            on_start=lambda info: setattr(bar, "total", info.frame_count),
            on_frame=bar.update, on_warning=log.warning,
        )  # fmt: skip
    width, height = report.size
    click.echo(
        f"{video} -> {report.output} ({report.frames} frames at {report.fps:g} fps, "
        f"{width}x{height}, results from {report.results})"
    )


@click.command("plot")
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
@quiet_option("No warnings.")
def plot_command(csvs: tuple[Path, ...], output: Path | None, width: int, quiet: bool) -> None:
    """Draw the results of analysed recordings in one picture.

    One row per CSV written by `emonet analyze`: valence and arousal over time with the expression
    as a coloured ribbon under them and the no-face spans shaded, and beside them the
    valence/arousal scatter on the circumplex.

    Needs matplotlib: pip install 'emonet-cli[plot]'. Exit status: 0 done, 1 failed, 2 usage
    error. More: docs/analyze.md.

    \b
    Examples:
      emonet plot results/clip.csv
      emonet plot results/a.csv results/b.csv -o overview.png"""
    from emonet_cli.views.plot import plot_results

    setup_logging(quiet)
    first = csvs[0]
    output = output or first.with_name(f"{first.stem}.plot.png")
    click.echo(plot_results(list(csvs), output, width=width))
