"""Every float option of every command refuses NaN and infinity as a usage error naming it.

The options are found by walking the `emonet` command group, so an option added later is
checked without editing this file."""

from __future__ import annotations

import click
import pytest
from cli_helpers import run_cli
from click.testing import CliRunner

from emonet_cli.cli import cli
from emonet_cli.cli.numbers import FiniteFloat

NOT_FINITE = ("nan", "NaN", "inf", "-inf", "1e999")


def commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def float_options():
    return [
        (path, command, param)
        for path, command in commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and isinstance(param.type, click.types.FloatParamType)
    ]


FLOAT_OPTIONS = float_options()


def test_the_walk_finds_the_float_options_of_several_commands():
    found = {(" ".join(path), param.opts[-1]) for path, _, param in FLOAT_OPTIONS}
    assert {("analyze", "--min-face-conf"), ("detect", "--min-score")} <= found
    assert {("finetune", "--lr"), ("analyze", "--sample-rate")} <= found
    assert len({path for path, _, _ in FLOAT_OPTIONS}) >= 4


@pytest.mark.parametrize(
    "path, command, param",
    FLOAT_OPTIONS,
    ids=[f"{' '.join(path)} {param.opts[-1]}" for path, _, param in FLOAT_OPTIONS],
)
def test_every_float_option_refuses_nan_and_infinity(path, command, param, tmp_path):
    assert isinstance(param.type, FiniteFloat), f"{param.opts[-1]} is not a FiniteFloat"
    existing = tmp_path / "input.mp4"
    existing.write_bytes(b"")
    # The option comes first, so click checks it before the arguments.
    arguments = [str(existing) for p in command.params if isinstance(p, click.Argument)]
    for value in NOT_FINITE:
        result = CliRunner().invoke(cli, [*path, f"{param.opts[-1]}={value}", *arguments])
        assert result.exit_code == 2, (value, result.output)
        assert param.opts[-1] in result.output and "not a finite number" in result.output


def test_finite_values_keep_their_bounds():
    bounded = FiniteFloat(0.0, 1.0)
    assert bounded.convert("0.25", None, None) == 0.25
    assert bounded.convert(1, None, None) == 1.0
    with pytest.raises(click.BadParameter, match="range"):
        bounded.convert("1.5", None, None)
    with pytest.raises(click.BadParameter, match="finite"):
        FiniteFloat(min=0.0).convert(float("inf"), None, None)


def test_a_nan_threshold_is_a_usage_error_and_writes_nothing(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded: the options are checked first")
    before = sorted(tmp_path.iterdir())
    proc = run_cli("analyze", clip, "--min-face-conf", "nan", check=False)
    assert proc.returncode == 2
    assert "--min-face-conf" in proc.stderr and "not a finite number" in proc.stderr
    assert sorted(tmp_path.iterdir()) == before
