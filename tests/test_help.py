"""Each command's --help is the short form of its docs page: it starts with one sentence a
newcomer understands and ends with examples that parse; checked for every command and
subcommand of the click group, whatever commands are added."""

from __future__ import annotations

import re

import click
import pytest
from cli_helpers import run_cli
from doc_commands import ROOT, check_command, command_words

from emonet_cli.cli import cli

# What a first sentence leaves to the rest of the help: options, file placeholders (S.csv),
# code, and argument names (INPUTS, SRC_DIR); the names of things are fine.
JARGON = re.compile(r"--|`|\bS\.[a-z]")
ARGUMENT_NAME = re.compile(r"\b[A-Z][A-Z_]{2,}\b")
NAMES = {"EMOTIC", "RBDM", "DISCOVER", "NOVA"}
FIRST_SENTENCE_CHARS = 57  # what `emonet --help` shows of it beside the longest command name


def all_commands(command: click.Command = cli, path: tuple[str, ...] = ("emonet",)):
    """(path, command) of the group itself and of every command and subcommand under it."""
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(click.Context(command))):
            yield from all_commands(command.commands[name], (*path, name))


COMMANDS = list(all_commands())
IDS = [" ".join(path) for path, _ in COMMANDS]


def paragraphs(command: click.Command) -> list[str]:
    return [p for p in (command.help or "").split("\n\n") if p.strip()]


def first_sentence(command: click.Command) -> str:
    return " ".join(paragraphs(command)[0].split())


def examples(command: click.Command) -> list[str]:
    """The lines of the help's last paragraph, which is `\\b`, `Example(s):`, commands."""
    lines = paragraphs(command)[-1].strip("\n").splitlines()
    assert lines[0].strip() == "\b", "the examples are a \\b block (kept as written)"
    assert lines[1].strip() in ("Example:", "Examples:"), lines[1]
    return [line.strip() for line in lines[2:]]


def test_every_command_is_found():
    names = set(IDS)
    assert {"emonet", "emonet analyze", "emonet weights", "emonet weights fetch"} <= names
    assert len(names) >= 13


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_help_starts_with_one_plain_sentence(path, command):
    sentence = first_sentence(command)
    assert sentence.endswith("."), sentence
    assert not re.search(r"[.;:!?]\s", sentence[:-1]), f"one sentence: {sentence}"
    assert not JARGON.search(sentence), f"no options, placeholders or code: {sentence}"
    assert set(ARGUMENT_NAME.findall(sentence)) <= NAMES, f"no argument names: {sentence}"
    if len(path) > 1:  # listed beside its name in the group's --help
        assert len(sentence) <= FIRST_SENTENCE_CHARS, sentence


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_help_ends_with_examples_of_the_command(path, command):
    ran = []
    for line in examples(command):
        words = command_words(line)
        assert words is not None, line
        ran.append(check_command(words))  # raises where the example does not parse
    # The first runs the command itself (or, for a group, one of its commands); the others
    # may show what comes next (finetune, then analyze with the new weights).
    assert ran and (ran[0] + " ").startswith(" ".join(path) + " "), (ran, path)


def test_the_example_check_can_fail():
    class Bad(click.Command):
        pass

    bad = Bad("bad", help="Do something.\n\n\b\nExamples:\n  emonet analyze --bboxes x")
    with pytest.raises(click.UsageError):
        test_help_ends_with_examples_of_the_command(("emonet", "analyze"), bad)
    no_block = Bad("bad", help="Do something.\n\nExamples: emonet analyze clip.mp4")
    with pytest.raises(AssertionError):
        examples(no_block)


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_the_real_help_shows_sentences_and_examples_unwrapped(path, command):
    """`emonet ... --help` as a user runs it: the examples printed line for line, and a
    group's commands listed each with its whole first sentence."""
    shown = run_cli(*path[1:], "--help").stdout
    for line in examples(command):
        assert f"\n    {line}\n" in shown, line
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            assert f" {first_sentence(command.commands[name])}\n" in shown, name


@pytest.mark.parametrize("path, command", COMMANDS, ids=IDS)
def test_the_pages_a_help_names_exist(path, command):
    for page in re.findall(r"\b(?:docs/[\w-]+\.md|README\.md)", command.help or ""):
        assert (ROOT / page).is_file(), page
