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
@click.option("--epochs", type=click.IntRange(min=1), help="[default: 10; --model emotic: 15]")
@click.option("--batch-size", type=click.IntRange(min=2), help="[default: 16; --model emotic: 52]")
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    help="Learning rate.  [default: 0.0003; --model emotic: 0.01]",
)
@click.option(
    "--weight-decay",
    type=FiniteFloat(min=0),
    help="[default: 0.01; --model emotic: 0.0005]",
)
@click.option(
    "--schedule",
    type=click.Choice(["cosine", "constant", "step"]),
    help="Learning rate: cosine from --lr to 0 over the run, constant, or (--model emotic "
    "only) x0.1 every 7 epochs, the reference's.  [default: cosine; --model emotic: step]",
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
    help="Flip, rotate, scale and shift the face box, change brightness and contrast "
    "(--model emotic: the reference's flip and brightness, contrast, saturation jitter).",
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
@click.option(
    "--body-init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="--model emotic: the ImageNet ResNet-18 its body network starts from (torchvision's "
    "resnet18-f37072fd.pth).  [default: downloaded into the cache and checked]",
)
@click.option(
    "--context-init",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="--model emotic: the Places365 ResNet-18 its context network starts from "
    "(resnet18_places365.pth.tar).  [default: downloaded into the cache and checked]",
)
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT_DIR (same options).")
@quiet_option("No progress bar and no warnings.")
def finetune_command(labels, images, output_dir, classes, colors, init, epochs, batch_size,
                     lr, weight_decay, schedule, val_split, val, seed, augment, balance,
                     train_fan, family, device, precision, offline, workers, body_init,
                     context_init, resume, quiet) -> None:  # fmt: skip
    """Train EmoNet on your own labelled faces and classes.

    The face-alignment network stays frozen, the emotion branch learns (with a new final layer for
    another number of classes). Then `emonet analyze --weights OUTPUT_DIR/best.pth` writes the new
    class names.

    LABELS: a CSV of image,expression,valence,arousal[,x1,y1,x2,y2] (expression: the class
    index; valence and arousal may be empty), AffectNet's CSV, or FER2013's
    emotion,pixels,Usage. Each epoch prints a line and writes metrics.csv; best.pth is the
    epoch with the best validation score (ACC, or the mean of ACC and the CCCs of valence and
    arousal when labelled); last.pth lets --resume continue. Exit status: 0 done, 1 failed,
    2 usage error.

    With --model emotic, LABELS is EMOTIC's Annotations.mat and --images the folder holding
    its image folders (mscoco/, framesdb/, emodb_small/, ade20k/): both ResNet-18s and the
    fusion head train on the train split as the reference trains them, best.pth is the
    epoch with the best validation mAP, with each category's threshold chosen on the val
    split (where precision equals recall). More: docs/evaluate-finetune.md,
    docs/emotic-training.md.

    \b
    Examples:
      emonet finetune labels.csv --images faces/ -o model/ --classes calm,pain,joy
      emonet analyze session.mp4 --weights model/best.pth
      emonet finetune --model emotic Annotations.mat --images emotic/ -o run/"""
    import sys

    given = click.get_current_context().get_parameter_source
    if family == "emotic":
        refused = [name for name in ("classes", "colors", "init", "val_split", "val", "balance",
                                     "train_fan") if given(name).name != "DEFAULT"]  # fmt: skip
        if refused:
            raise click.UsageError(
                f"--model emotic takes no {', '.join('--' + n.replace('_', '-') for n in refused)}"
            )
        if images is None:
            raise click.UsageError("--model emotic needs --images: the dataset's image folder")
        prepare_to_run(quiet)
        train_emotic(labels, images, output_dir, epochs, batch_size, lr, weight_decay,
                     schedule, seed, augment, device, precision, offline, workers, body_init,
                     context_init, resume, quiet)  # fmt: skip
        return
    if body_init is not None or context_init is not None:
        raise click.UsageError("--body-init and --context-init are for --model emotic")
    if schedule == "step":
        raise click.UsageError("--schedule step is for --model emotic")
    if val is not None and val_split is not None:
        raise click.UsageError("give either --val or --val-split, not both")
    from emonet_cli.finetune.data import Augmentation
    from emonet_cli.finetune.train import TrainingSettings, finetune

    prepare_to_run(quiet)
    settings = TrainingSettings(
        epochs=10 if epochs is None else epochs,
        batch_size=16 if batch_size is None else batch_size,
        lr=3e-4 if lr is None else lr,
        weight_decay=0.01 if weight_decay is None else weight_decay,
        schedule=schedule or "cosine",
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


def train_emotic(annotations, images, output_dir, epochs, batch_size, lr, weight_decay,
                 schedule, seed, augment, device, precision, offline, workers, body_init,
                 context_init, resume, quiet) -> None:  # fmt: skip
    """`emonet finetune --model emotic`: train, print a line per epoch and the result."""
    import sys

    from emonet_cli.finetune.emotic_settings import EmoticSettings
    from emonet_cli.finetune.emotic_train import finetune_emotic

    chosen = {"epochs": epochs, "batch_size": batch_size, "lr": lr,
              "weight_decay": weight_decay, "schedule": schedule}  # fmt: skip
    settings = EmoticSettings(
        **{k: v for k, v in chosen.items() if v is not None}, augment=augment, seed=seed
    )

    def line(report) -> None:
        row = report.row
        text = (
            f"epoch {report.epoch}/{report.epochs}: loss {row['train_loss']:.4f} "
            f"(categories {row['train_category_loss']:.4f}, VAD {row['train_vad_loss']:.4f})"
        )
        if "val_map" in row:
            text += f" | val mAP {score(row['val_map'])}, VAD MAE {score(row['val_vad_mae'])}"
        click.echo(
            text + f" ({row['people_per_s']:.1f} people/s)" + (" *best*" if report.best else "")
        )

    result = finetune_emotic(
        annotations,
        output_dir,
        images=images,
        settings=settings,
        body_init=body_init,
        context_init=context_init,
        device=device,
        precision=precision,
        resume=resume,
        offline=offline,
        workers=workers,
        progress=not quiet and sys.stderr.isatty(),
        on_epoch=line,
    )
    best = result.history[result.best_epoch - 1]
    click.echo(
        f"{result.best} (epoch {result.best_epoch} of {len(result.history)}, "
        f"{result.train_people} people trained, {result.val_people} validated; "
        f"val mAP {score(best.get('val_map'))}; thresholds chosen on the val split)"
    )
