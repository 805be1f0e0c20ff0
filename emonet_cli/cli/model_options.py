"""The options that choose and place the model: --model, --nclass, --weights, --offline,
--batch-size, --device, --precision, and the ModelOptions they make."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import PRECISION_CHOICES, stack
from emonet_cli.constants import NCLASS_CHOICES
from emonet_cli.faces.align import BOX_KINDS
from emonet_cli.models.registry import DEFAULT_FAMILY, FAMILIES


def model_family_option(names: tuple[str, ...] = tuple(FAMILIES)):
    """--model: which model family of the registry runs (passed on as `family`)."""
    return click.option(
        "--model",
        "family",
        type=click.Choice(names),
        default=DEFAULT_FAMILY,
        show_default=True,
        help="Which model family: "
        + "; ".join(f"{name}: {FAMILIES[name].title}" for name in names)
        + ".",
    )


def model_options(
    batch_size: int = 8,
    batch_help: str = "Faces per model batch.",
    families: tuple[str, ...] = tuple(FAMILIES),
):
    """--model / --nclass / --weights / --offline / --batch-size / --device / --precision."""
    return stack(
        model_family_option(families),
        click.option(
            "--nclass",
            type=click.IntRange(min=2),
            help=f"Expression classes: {' or '.join(map(str, NCLASS_CHOICES))} for the "
            "published weights; with --weights, what the file holds (another number is an "
            "error).  [default: from --weights, else 8]",
        ),
        click.option(
            "--weights",
            type=click.Path(path_type=Path),
            help="A weights file (state dict, e.g. from `emonet finetune`) instead of the "
            "published weights, or the folder holding the family's published file(s).",
        ),
        offline_option,
        click.option(
            "--batch-size",
            type=click.IntRange(min=1),
            default=batch_size,
            show_default=True,
            help=batch_help,
        ),
        device_options,
    )


offline_option = click.option("--offline", is_flag=True, help="Never download weights.")

device_options = stack(
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda[:N], mps."),
    click.option(
        "--precision",
        type=click.Choice(PRECISION_CHOICES),
        default="auto",
        show_default=True,
        help="auto: bf16 on CUDA and on CPUs with fast bf16, fp32 otherwise.",
    ),
)


def model_choice(weights, nclass, offline, device, precision, quiet, family=DEFAULT_FAMILY):
    """The ModelOptions of a command line."""
    from emonet_cli.run.one_input import ModelOptions

    return ModelOptions(
        family=family,
        weights=weights,
        nclass=int(nclass) if nclass else None,
        offline=offline,
        device=device,
        precision=precision,
        progress=not quiet,
    )


box_kind_option = click.option(
    "--box-kind",
    type=click.Choice(BOX_KINDS),
    help="What the boxes of box files frame: faces, or whole people (EMOTIC's person boxes). "
    "Face boxes given to --model emotic (and the faces --detect finds) are grown into "
    "upper-body boxes.  [default: person for --model emotic, else face]",
)


def box_kind_choice(box_kind: str | None, family: str) -> str:
    """The --box-kind of a command line: the family's default, or one it can read."""
    entry = FAMILIES[family]
    if box_kind is None:
        return entry.file_boxes
    if box_kind != "face" and entry.file_boxes == "face":
        raise click.UsageError(f"--box-kind {box_kind}: --model {family} reads face boxes only")
    return box_kind
