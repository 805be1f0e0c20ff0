"""The options that choose and place the model: --model, --nclass, --weights, --offline,
--batch-size, --device, --precision, and the ModelOptions they make."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.cli.common import PRECISION_CHOICES, stack
from emonet_cli.constants import NCLASS_CHOICES
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


def model_options(batch_size: int = 8, batch_help: str = "Faces per model batch."):
    """--model / --nclass / --weights / --offline / --batch-size / --device / --precision."""
    return stack(
        model_family_option(),
        click.option(
            "--nclass",
            type=click.IntRange(min=2),
            help=f"Expression classes: {' or '.join(map(str, NCLASS_CHOICES))} for the "
            "published weights; with --weights, what the file holds (another number is an "
            "error).  [default: from --weights, else 8]",
        ),
        click.option(
            "--weights",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A weights file (state dict, e.g. from `emonet finetune`) instead of the "
            "published weights.",
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
