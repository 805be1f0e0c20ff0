"""`emonet analyze`: option parsing and printing; the loop over inputs is runner.run_many."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from emonet_cli.cli.common import (
    analysis_options,
    counted,
    find_inputs,
    log,
    output_dir_option,
    prepare_to_run,
    progress_bar,
    quiet_option,
    recursive_option,
    report_outcomes,
    run_options,
    selection_choice,
    selection_options,
)
from emonet_cli.cli.face_options import (
    box_choice,
    box_options,
    command_detection,
    save_people_option,
    saving_people,
)
from emonet_cli.cli.model_options import (
    box_kind_choice,
    box_kind_option,
    model_choice,
    model_options,
)
from emonet_cli.models import registry


@click.command("analyze")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@box_options
@save_people_option
@box_kind_option
@model_options()
@recursive_option
@analysis_options()
@selection_options
@click.option(
    "--merge", is_flag=True, help="Join runs of the same expression into one annotation segment."
)
@click.option("--landmarks", is_flag=True, help="Also write S.landmarks.stream (68 x,y).")
@click.option("--embeddings", is_flag=True, help="Also write S.embedding.stream (256 values).")
@click.option(
    "--pose", is_flag=True, help="Also write S.pose.stream (yaw, pitch, roll in degrees)."
)
@click.option(
    "--annotation-format",
    type=click.Choice(["ascii", "binary"]),
    default="ascii",
    show_default=True,
    help="Data format of the NOVA annotation files.",
)
@output_dir_option("results")
@run_options
@click.option(
    "--scheduler",
    envvar="EMONET_SCHEDULER",
    metavar="ADDRESS",
    help="Run each input as a task on the Dask cluster of this scheduler (tcp://head:8786); "
    "env EMONET_SCHEDULER.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Run the inputs on a local Dask cluster of N worker processes started for the run.",
)
@click.option(
    "--decoders",
    type=click.IntRange(min=1),
    help="Decode N inputs at once and batch their faces together into the one model "
    "(the same outputs)  [default: 1 with the model on the CPU, half the cores up to 8 on a GPU]",
)
@quiet_option()
@click.pass_context
def analyze(ctx, inputs, bbox, bbox_dir, full_frame, detect, min_score, square, repeat_last,
            max_faces, track_patience, track_confirm, people_file, save_people, box_kind,
            recursive, family, nclass, weights,
            offline,
            batch_size, device, precision, min_face_conf, smooth, usable, start, end,
            sample_rate, merge, landmarks, embeddings, pose, annotation_format,
            output_dir, skip_existing, fail_fast, as_json, debug, scheduler, workers,
            decoders, quiet) -> None:  # fmt: skip
    """Find expression, valence and arousal of faces in videos.

    Inputs are videos, still images or folders of them. Faces come from --bbox / --bbox-dir /
    --full-frame; without them from S.stream or S.csv beside the input S.ext, else the built-in
    BlazeFace detector finds them (and S.stream, S.keypoints.stream record what it found, as
    DISCOVER's blazeface module writes them). With --max-faces N > 1 (and no box file), every face
    up to N per frame is tracked; so are several people from --bbox A --bbox B or a CSV with a face
    column: each person K gets S.faceK.* and all of them S.faces.csv.

    For an input S.ext: S.csv, S.expression/.valence/.arousal.annotation (NOVA, videos only),
    optionally S.landmarks.stream, S.embedding.stream and S.pose.stream (SSI), and S.emonet.json
    (summary and provenance, written last). Each CSV row ends with the head pose, face size,
    sharpness and whether the frame is usable (--usable). --start/--end/--sample-rate analyse
    part of each video: the CSV has a row per analysed frame, annotations and streams start at
    t = 0 (no face before --start) at the video's rate or HZ.

    Exit status: 0 all inputs done, 1 any failed, 2 usage error. More: docs/analyze.md.

    \b
    Examples:
      emonet analyze clip.mp4
      emonet analyze recordings/ -r --bbox-dir boxes/ -o results/
      emonet analyze interview.mp4 --max-faces 2"""
    from emonet_cli.analysis.pipeline import AnalysisSettings
    from emonet_cli.outputs.writers import OutputOptions
    from emonet_cli.run.runner import run_many

    prepare_to_run(quiet)
    for flag, kind, asked in (
        ("--landmarks", "landmarks", landmarks),
        ("--embeddings", "embedding", embeddings),
    ):
        if asked and not registry.family(family).gives(kind):
            raise click.UsageError(f"{flag}: --model {family} gives no {kind}")
    if full_frame and registry.family(family).file_boxes == "person":
        raise click.UsageError(
            f"--full-frame: --model {family} needs person boxes, not frames that are faces"
        )
    detection = command_detection()
    boxes = box_choice(
        bbox, bbox_dir, full_frame, detect, detection, box_kind_choice(box_kind, family)
    )
    media = find_inputs(inputs, recursive, output_dir)
    selection = selection_choice(start, end, sample_rate)
    box_files = [path.suffix.lower() in (".stream", ".csv") for path in bbox]
    if len(media) > 1 and any(box_files):
        raise click.UsageError("--bbox takes one input; use --bbox-dir for several")

    if scheduler is not None and workers is not None:
        if ctx.get_parameter_source("scheduler") is click.core.ParameterSource.ENVIRONMENT:
            scheduler = None  # an explicit --workers wins over $EMONET_SCHEDULER
        else:
            raise click.UsageError("give either --scheduler or --workers, not both")
    if decoders is not None and (scheduler is not None or workers is not None):
        raise click.UsageError(
            "--decoders runs several inputs at once in this process; with --workers or "
            "--scheduler each input is a task of its own"
        )
    if scheduler is None and workers is None:
        executor = contextlib.nullcontext()
    else:
        from emonet_cli.run.cluster import connect

        executor = connect(scheduler, workers)
    with executor as client:
        outcomes = run_many(
            media,
            boxes=boxes,
            model=model_choice(weights, nclass, offline, device, precision, quiet, family),
            settings=AnalysisSettings(
                batch_size=batch_size,
                min_face_conf=min_face_conf,
                smooth=smooth,
                selection=selection,
                usable=usable,
            ),
            options=OutputOptions(
                directory=output_dir,
                landmarks=landmarks,
                embeddings=embeddings,
                pose=pose,
                merge=merge,
                annotation_ftype=annotation_format.upper(),
                family=family,
            ),
            skip_existing=skip_existing,
            fail_fast=fail_fast,
            progress=lambda path: progress_bar(not quiet, path.name),
            on_warning=log.warning,
            executor=client,
            decoders=decoders,
            # A folder run leaves a record of each failed input for `emonet report`.
            record_failures=any(path.is_dir() for path in inputs),
        )
        if client is not None:  # one bar over the inputs, not one per input's frames
            outcomes = counted(outcomes, len(media), not quiet)
        outcomes = saving_people(outcomes, save_people)
        with contextlib.closing(outcomes):
            report_outcomes(outcomes, as_json, debug)
