"""`emonet evaluate`: score a model on labelled faces; the work is evaluate.py's."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import log, prepare_to_run, quiet_option
from emonet_cli.cli.model_options import model_choice, model_options
from emonet_cli.models import registry

UNREADABLE_SHOWN = 10  # unreadable images named on stderr; the JSON report lists them all


@click.command("evaluate")
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
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    help="--model emotic with EMOTIC's Annotations.mat as LABELS: the split to score.  "
    "[default: test]",
)
@click.option(
    "--scores",
    type=click.Path(dir_okay=False, path_type=Path),
    help="--model emotic: also write each person's labels, raw category scores and VAD "
    "as CSV here.",
)
@quiet_option("No progress bar and no warnings.")
def evaluate_command(
    labels: Path,
    images_root: Path,
    family: str,
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
    split: str | None,
    scores: Path | None,
    quiet: bool,
) -> None:
    """Score a model on faces whose expressions are known.

    It prints the EmoNet paper's table: ACC of the expression; CCC, PCC, RMSE and SAGR of valence
    and arousal. With --model emotic, EMOTIC's metrics on labelled people instead: the AP of each
    category, their mean, and the mean absolute error of valence, arousal and dominance (1-10).

    LABELS is AffectNet's CSV (subDirectory_filePath, face_x, face_y, face_width, face_height,
    facial_landmarks, expression, valence, arousal) or a CSV of
    image,expression,valence,arousal[,x1,y1,x2,y2]. Expressions are AffectNet ids (0 Neutral,
    1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt; 8-10 are skipped);
    a valence or arousal of -2 (or empty) means missing and skips the row. A model from
    `emonet finetune` reads its own labels: class indices, and rows without valence and
    arousal score the expression. The face box comes from the
    landmarks, else the face rectangle or x1..y2; without one the image is taken as a face
    crop. Unreadable images are skipped and listed.

    For --model emotic, LABELS is a CSV with the header image,x1,y1,x2,y2,categories,valence,
    arousal,dominance: the person box, the categories that hold separated by ';', and VAD on
    EMOTIC's 1-10 scale (or empty), or the dataset's own Annotations.mat with --split
    (the val and test splits' combined labels; --images: the folder holding mscoco/,
    framesdb/, emodb_small/, ade20k/); --flip and --cleaned do not apply.

    More: docs/evaluate-finetune.md, docs/emotic-training.md.

    \b
    Examples:
      emonet evaluate test_set.csv --images AffectNet/Manually_Annotated_Images -o report.json
      emonet evaluate labels.csv --images faces/ --weights model/best.pth
      emonet evaluate Annotations.mat --model emotic --images emotic/ --weights run/best.pth"""
    import sys

    from emonet_cli.evaluate.labels import AFFECTNET_IDS, read_labels
    from emonet_cli.evaluate.scoring import evaluate, evaluation_report, format_table

    prepare_to_run(quiet)
    show_progress = not quiet and sys.stderr.isatty()
    model = model_choice(
        weights, nclass, offline, device, precision, quiet=not show_progress, family=family
    )
    if registry.family(family).categories:
        people = read_people(labels, split)  # a bad label file fails before the model loads
        predictor, provenance = model.load()
        evaluate_categories(people, images_root, predictor, provenance, batch_size, limit,
                            output, labels, show_progress, scores)  # fmt: skip
        return
    if split is not None or scores is not None:
        raise click.UsageError("--split and --scores are for --model emotic")
    predictor, provenance = model.load()
    # A fine-tuned model's own classes are class indices in the simple layout.
    rows = read_labels(labels, None if predictor.classes.labels == "index" else AFFECTNET_IDS)
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
        weights = {"weights_path": Path(provenance["weights"])}
        save_report(
            output,
            evaluation_report(evaluation, **sources(labels, images_root, weights, provenance)),
        )


def read_people(labels: Path, split: str | None) -> list:
    """The labelled people of an EMOTIC label CSV, or of a split of Annotations.mat."""
    from emonet_cli.errors import FormatError
    from emonet_cli.evaluate.emotic import read_person_labels
    from emonet_cli.evaluate.emotic_mat import is_mat_file, read_annotations

    if not is_mat_file(labels):
        if split is not None:
            raise click.UsageError("--split is for EMOTIC's Annotations.mat")
        return read_person_labels(labels)
    annotations = read_annotations(labels, split or "test")
    for reason, count in sorted(annotations.left_out.items()):
        log.warning("%s: %d %s people left out as the reference does: %s",
                    labels, count, annotations.split, reason)  # fmt: skip
    if not annotations.people:
        raise FormatError(f"{labels}: no labelled person in the {annotations.split} split")
    return annotations.people


def evaluate_categories(people, images_root, predictor, provenance, batch_size, limit, output,
                        labels, progress, scores=None) -> None:  # fmt: skip
    """`emonet evaluate` of a family with categories (EMOTIC): its table, and its report."""
    from emonet_cli.evaluate.emotic import (
        evaluate_people,
        format_people_table,
        people_report,
        write_person_scores,
    )

    evaluation = evaluate_people(people, images_root, predictor, batch_size, limit, progress)
    if scores is not None:
        write_person_scores(scores, evaluation)
    for line, image, reason in evaluation.unreadable[:UNREADABLE_SHOWN]:
        log.warning("skipped %s (line %d): %s", image, line, reason)
    click.echo(format_people_table(evaluation))
    if output is not None:
        weights = {"weights": provenance["weights"]}
        save_report(
            output, people_report(evaluation, **sources(labels, images_root, weights, provenance))
        )


def sources(labels: Path, images_root: Path, weights: dict, provenance: dict) -> dict:
    """What a report records of where its numbers come from."""
    return {
        "labels": labels,
        "images_root": images_root,
        **weights,
        "weights_sha256": provenance["weights_sha256"],
    }


def save_report(output: Path, report: dict) -> None:
    from emonet_cli.outputs.writers import write_json

    write_json(output, report)
    log.info("report written to %s", output)
