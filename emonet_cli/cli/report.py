"""`emonet report`: a results folder at a glance."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import quiet_option, setup_logging
from emonet_cli.cli.numbers import FiniteFloat


@click.command("report")
@click.argument("results", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The page to write.  [default: RESULTS/report.html]",
)
@click.option(
    "--few-faces",
    type=FiniteFloat(0.0, 1.0),
    default=0.5,
    show_default=True,
    metavar="SHARE",
    help="Flag inputs with a face in fewer than this share of their frames.",
)
@click.option(
    "--few-usable",
    type=FiniteFloat(0.0, 1.0),
    default=0.5,
    show_default=True,
    metavar="SHARE",
    help="Flag inputs with fewer than this share of their frames usable (analyze --usable).",
)
@click.option(
    "--no-frames",
    is_flag=True,
    help="Do not write RESULTS/frames.parquet (every frame of every input as one table).",
)
@quiet_option("No warnings.")
def report_command(
    results: Path,
    output: Path | None,
    few_faces: float,
    few_usable: float,
    no_frames: bool,
    quiet: bool,
) -> None:
    """Sum up a folder of analysis results on one page.

    Reads every result of `emonet analyze` below RESULTS (sub-folders included, any model,
    failed inputs too) and writes RESULTS/index.csv, one row per input and per person of an
    input with several, and one self-contained page, RESULTS/report.html: the table sortable
    and filterable, failed inputs and those with few faces or few usable frames flagged, and
    per input its valence/arousal timeline, circumplex and files. The page needs no network.
    With pyarrow (the `parquet` extra) also RESULTS/frames.parquet, every frame of every input
    and person as one typed table, and RESULTS/index.parquet, the index typed. Exit status: 0
    done (also when some inputs had failed), 1 failed, 2 usage error. More: docs/report.md.

    \b
    Examples:
      emonet report results/
      emonet report results/ -o review.html --few-faces 0.8
      emonet report results/ --no-frames"""
    from emonet_cli.views.report import report_results

    setup_logging(quiet)
    report = report_results(
        results, output, few_faces=few_faces, few_usable=few_usable, frames=not no_frames
    )
    people = len(report.rows) - report.inputs
    click.echo(
        f"{report.index} ({report.inputs} inputs, {report.failed} failed"
        + (f", {people} people rows" if people else "")
        + ")"
    )
    if report.index_table is not None:
        click.echo(report.index_table)
    if report.frames is not None:
        click.echo(f"{report.frames.path} ({report.frames.rows} rows)")
    click.echo(report.page)
