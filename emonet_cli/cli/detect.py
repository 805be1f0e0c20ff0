"""`emonet detect`: DISCOVER's BlazeFace box streams for videos and images, without DISCOVER."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import (
    find_inputs,
    output_dir_option,
    prepare_to_run,
    progress_bar,
    quiet_option,
    recursive_option,
    report_outcomes,
    run_options,
)
from emonet_cli.cli.face_options import (
    command_detection,
    detection_options,
    save_people_option,
    saving_people,
)


@click.command("detect")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@detection_options
@save_people_option
@recursive_option
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda[:N], mps.")
@output_dir_option("the streams")
@run_options
@quiet_option()
def detect_command(inputs, min_score, square, repeat_last, max_faces, track_patience,
                   track_confirm, people_file, save_people, recursive, device, output_dir,
                   skip_existing, fail_fast, as_json, debug, quiet) -> None:  # fmt: skip
    """Find the faces in videos and images and save their boxes.

    The detector is BlazeFace, run as DISCOVER's blazeface module runs it. For an input S.ext
    it writes S.stream (ymin, xmin, ymax, xmax, conf per frame) and S.keypoints.stream (six y, x
    pairs and conf) exactly as DISCOVER's blazeface module does: the best face per frame,
    squared in pixels, the last face repeated at confidence 0 where none is found. NOVA opens
    them; `emonet analyze --bbox S.stream` reads them.

    With --max-faces N > 1, every face up to N per frame is tracked, and each person K gets
    S.faceK.stream and S.faceK.keypoints.stream (their face, as DISCOVER writes its one
    face), all of them S.faces.csv. People keep their number by position and, with the identity
    extra, by face, across cuts and absences; --people gives known people their names.
    Exit status: 0 all inputs done, 1 any failed, 2 usage error. More: docs/analyze.md.

    \b
    Examples:
      emonet detect recordings/ -r -o boxes/
      emonet detect interview.mp4 --max-faces 2"""
    from emonet_cli.run.runner import detect_many

    prepare_to_run(quiet)
    media = find_inputs(inputs, recursive, output_dir)
    outcomes = detect_many(
        media,
        detection=command_detection(),
        directory=output_dir,
        skip_existing=skip_existing,
        fail_fast=fail_fast,
        progress=lambda path: progress_bar(not quiet, path.name),
    )
    report_outcomes(saving_people(outcomes, save_people), as_json, debug)
