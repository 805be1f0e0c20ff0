"""The `emonet ...` command lines and the relative links of the documentation, and their checks
against the click group itself (tests/test_docs.py, tests/test_help.py).

A command line is a line of a fenced code block that starts with `emonet ` (after an optional
`$ ` prompt and `NAME=value` variables; a trailing backslash continues it on the next line),
or an inline code span of the prose that does. Each is parsed by the command's own click
parser: the subcommands must exist, and so must each option, with a value of the option's
type where that type is a fixed set of choices or a number. Placeholder arguments (clip.mp4,
DIR) are fine: paths are not looked at.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click

from emonet_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
# [text](target) and ![alt](target); a target may carry a "title".
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
# What click's parser gives an argument left out (click 8.3 on; None before).
NOT_GIVEN = (None, getattr(click.core, "UNSET", None))


def documentation_pages() -> list[Path]:
    """README.md and every page of docs/, including those added later."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class CommandLine:
    page: Path
    line: int
    text: str
    complete: bool  # a whole command line (code block), not a mention in the prose

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.text}"


def command_words(text: str) -> list[str] | None:
    """The words of `text` from `emonet` on, without a prompt, variables or a comment; None
    when it is no emonet command line."""
    text = text.strip()
    if text.startswith("$ "):
        text = text[2:]
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: not a shell line
        return None
    while words and VARIABLE.match(words[0]):
        words = words[1:]
    return words if words and words[0] == "emonet" else None


def prose_and_blocks(text: str):
    """(line number, line, inside a fenced block) for each line of a markdown page."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        yield number, line, fenced


def command_lines(page: Path) -> list[CommandLine]:
    found = []
    pending: tuple[int, str] | None = None  # a block line continued with a backslash
    for number, line, fenced in prose_and_blocks(page.read_text(encoding="utf-8")):
        if fenced:
            if pending is not None:
                start, text = pending
                line, number = text + " " + line.strip(), start
                pending = None
            if line.rstrip().endswith("\\"):
                pending = (number, line.rstrip()[:-1])
                continue
            if command_words(line) is not None:
                found.append(CommandLine(page, number, line.strip(), complete=True))
            continue
        for match in INLINE_CODE.finditer(line):
            code = match.group(2).strip()
            if code.startswith("emonet ") and command_words(code) is not None:
                found.append(CommandLine(page, number, code, complete=False))
    return found


def check_command(words: list[str], complete: bool = True) -> str:
    """The path of the command that `emonet WORDS...` runs ("emonet weights fetch"), after
    click's own parser has read it; click.UsageError (or click.BadParameter) where a
    subcommand, an option or an option's value does not exist, or arguments are left over.
    With `complete`, the command's required parameters must be given, as in a real run."""
    assert words[0] == "emonet", words
    command: click.Command = cli
    path, args, parent = ["emonet"], words[1:], None
    while True:
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        opts, rest, _ = command.make_parser(ctx).parse_args(args=list(args))
        params = command.get_params(ctx)
        for param in params:
            value = opts.get(param.name)
            if value in NOT_GIVEN or isinstance(param.type, (click.Path, click.File)):
                continue
            param.type_cast_value(ctx, value)  # choices, ranges, numbers
        if any(p.is_eager and p.expose_value is False and p.name in opts for p in params):
            return " ".join(path)  # --help or --version: nothing else is read
        if isinstance(command, click.Group):
            if not rest:
                if complete:
                    raise click.UsageError(f"{' '.join(path)}: which command?")
                return " ".join(path)
            sub = command.get_command(ctx, rest[0])
            if sub is None:
                raise click.UsageError(f"{' '.join(path)} has no command {rest[0]!r}")
            command, parent, path, args = sub, ctx, [*path, rest[0]], rest[1:]
            continue
        if rest:
            raise click.UsageError(f"{' '.join(path)}: unexpected arguments {rest}")
        if complete:
            for param in params:
                given = opts.get(param.name) not in NOT_GIVEN
                if param.required and not given and not getattr(param, "envvar", None):
                    raise click.MissingParameter(ctx=ctx, param=param)
        return " ".join(path)


def github_anchor(heading: str) -> str:
    """The anchor a code host gives a markdown heading: lower case, punctuation (but - and _)
    dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, repeated ones numbered as code hosts number them."""
    seen: dict[str, int] = {}
    found = set()
    for _, line, fenced in prose_and_blocks(page.read_text(encoding="utf-8")):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not heading:
            continue
        anchor = github_anchor(heading.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of each link and picture of the page's prose that is not a
    URL; code blocks and inline code are not links."""
    found = []
    for number, line, fenced in prose_and_blocks(page.read_text(encoding="utf-8")):
        if fenced:
            continue
        prose = INLINE_CODE.sub("", line)
        for match in LINK.finditer(prose):
            target = match.group(1)
            if not EXTERNAL.match(target):
                found.append((number, target))
    return found


def broken_link(page: Path, target: str) -> str | None:
    """Why `target`, linked from `page`, does not resolve; None when it does."""
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    if not resolved.exists():
        return f"{target}: no such file {resolved}"
    try:
        resolved.relative_to(ROOT)
    except ValueError:
        return f"{target}: outside the repository"
    if anchor:
        if resolved.suffix != ".md":
            return f"{target}: an anchor into a file that is not markdown"
        if anchor not in anchors(resolved):
            return f"{target}: {resolved.relative_to(ROOT)} has no heading #{anchor}"
    return None
