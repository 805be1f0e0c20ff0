"""`emonet finetune`: option parsing and printing; the work is finetune/train.py's."""

from __future__ import annotations

import math
from pathlib import Path

import click

from emonet_cli.cli.common import log, prepare_to_run, quiet_option
from emonet_cli.cli.model_options import device_options, model_family_option, offline_option
from emonet_cli.cli.numbers import FiniteFloat
from emonet_cli.models.registry import trainable_families


def name_list(ctx, param, value: str | None) -> list[str] | None:
    """A comma-separated list of names (or colours)."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",")]


def score(value) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def epoch_line(report) -> str:
    """One line per finished epoch on stdout."""
    row = report.row
    text = (
        f"epoch {report.epoch}/{report.epochs}: loss {row['train_loss']:.4f}, "
        f"train acc {row['train_acc']:.3f}"
    )
    if report.evaluation is not None:
        text += f" | val acc {score(row['val_acc'])}"
        if not math.isnan(row["val_valence_ccc"]):
            text += f", CCC valence {score(row['val_valence_ccc'])}"
            text += f", arousal {score(row['val_arousal_ccc'])}"
    text += f" ({row['images_per_s']:.1f} faces/s)"
    return text + (" *best*" if report.best else "")


@click.command("finetune")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder that the image paths in LABELS are relative to (not for FER2013's CSV).",
)
@click.option(
    "-o",
    "--output-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write best.pth, last.pth, metrics.csv, metrics.png and finetune.json.",
)
@click.option(
    "--classes",
    callback=name_list,
    metavar="NAME,NAME,...",
    help="Class names, class i for expression i.  [default: FER2013's or AffectNet's by "
    "the file, else class0, class1, ...]",
)
@click.option(
    "--colors",
    callback=name_list,
    metavar="#RRGGBB,...",
    help="NOVA colours of the classes.  [default: the published ones, else a palette]",
)
@click.option(
    "--init",
    default="published-8",
    show_default=True,
    metavar="published-8|published-5|FILE",
    help="The weights to start from.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=16, show_default=True)
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=3e-4, show_default=True)
@click.option("--weight-decay", type=FiniteFloat(min=0), default=0.01, show_default=True)
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "constant"]),
    default="cosine",
    show_default=True,
    help="Learning rate: cosine from --lr to 0 over the run, or constant.",
)
@click.option(
    "--val-split",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    help="Share of each class held out for validation.  [default: 0.1; FER2013: its "
    "PublicTest rows]",
)
@click.option(
    "--val",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A label file of validation faces instead of --val-split.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--augment/--no-augment",
    default=True,
    show_default=True,
    help="Flip, rotate, scale and shift the face box, change brightness and contrast.",
)
@click.option(
    "--balance",
    type=click.Choice(["none", "sample", "weight"]),
    default="none",
    show_default=True,
    help="Class balance: draw classes equally often, or weight the loss by class.",
)
@click.option("--train-fan", is_flag=True, help="Also train the FAN's last hourglass.")
@model_family_option(trainable_families())
@device_options
@offline_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads reading and augmenting images ahead of the model.",
)
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT_DIR (same options).")
@quiet_option("No progress bar and no warnings.")
def finetune_command(labels, images, output_dir, classes, colors, init, epochs, batch_size,
                     lr, weight_decay, schedule, val_split, val, seed, augment, balance,
                     train_fan, family, device, precision, offline, workers, resume,
                     quiet) -> None:  # fmt: skip
    """Fine-tune EmoNet on labelled faces: the face-alignment network stays frozen, the
    emotion branch learns (with a new final layer for another number of classes). Then
    `emonet analyze --weights OUTPUT_DIR/best.pth` writes the new class names.

    LABELS: a CSV of image,expression,valence,arousal[,x1,y1,x2,y2] (expression: the class
    index; valence and arousal may be empty), AffectNet's CSV, or FER2013's
    emotion,pixels,Usage. Each epoch prints a line and writes metrics.csv; best.pth is the
    epoch with the best validation score (ACC, or the mean of ACC and the CCCs of valence and
    arousal when labelled); last.pth lets --resume continue. Exit status: 0 done, 1 failed,
    2 usage error."""
    import sys

    if val is not None and val_split is not None:
        raise click.UsageError("give either --val or --val-split, not both")
    from emonet_cli.finetune.data import Augmentation
    from emonet_cli.finetune.train import TrainingSettings, finetune

    prepare_to_run(quiet)
    settings = TrainingSettings(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        seed=seed,
        augmentation=Augmentation() if augment else None,
        balance=balance,
        train_fan=train_fan,
    )
    result = finetune(
        labels,
        output_dir,
        images=images,
        class_names=classes,
        class_colors=colors,
        init=init,
        val=val,
        val_split=val_split,
        settings=settings,
        device=device,
        precision=precision,
        resume=resume,
        offline=offline,
        workers=workers,
        progress=not quiet and sys.stderr.isatty(),
        on_epoch=lambda report: click.echo(epoch_line(report)),
        family=family,
    )
    if result.plot is None and not quiet:
        log.warning("no metrics.png: the plot needs matplotlib (pip install 'emonet-cli[plot]')")
    best = result.history[result.best_epoch - 1]
    click.echo(
        f"{result.best} (epoch {result.best_epoch} of {len(result.history)}, "
        f"{len(result.classes.names)} classes: {', '.join(result.classes.names)}; "
        f"val acc {score(best.get('val_acc'))})"
    )
