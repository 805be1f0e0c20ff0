"""The `emonet` command line: option parsing and printing only; the work lives in the modules."""

from __future__ import annotations

import logging

import click

from emonet_cli import __version__
from emonet_cli.errors import EmonetError

log = logging.getLogger("emonet")


class EmonetGroup(click.Group):
    """Turns errors a user can cause into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EmonetError as exc:
            raise click.ClickException(str(exc)) from None


def setup_logging(quiet: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("emonet: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


@click.group(cls=EmonetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emonet")
def cli() -> None:
    """Facial affect (expression, valence, arousal, landmarks) in videos with EmoNet."""
    setup_logging()


def main() -> None:
    cli(prog_name="emonet")
