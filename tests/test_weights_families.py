"""Every family's weights through one lookup and `emonet weights`: RBDM's file fetched from a
local HTTP server by the EmoNet download code and then found by RBDM's loader, EMOTIC's lookup
of its converted file or published folder, `fetch`, `list` and `path` for every family
(`convert` and the shared loader: test_weights_convert.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from local_server import Server, serving
from weights_helpers import error_line, isolate, restored_logger, run_cli, sha256, write_file

from emonet_cli.cli import cli
from emonet_cli.errors import WeightsError
from emonet_cli.models.emotic.lookup import (
    CONVERTED_FILE,
    EMOTIC_LOOKUP,
    PUBLISHED_FILES,
    find_emotic_weights,
)
from emonet_cli.models.published import EMONET_LOOKUP
from emonet_cli.models.rbdm.inference import find_rbdm_weights, load_rbdm
from emonet_cli.models.rbdm.keras_layout import write_published_layout_standin
from emonet_cli.models.registry import FAMILIES, family, weights_lookups
from emonet_cli.models.weights import fetch_weights, weights_inventory

RBDM = family("rbdm").lookup
RBDM_FILE = RBDM.files[8].filename
RBDM_SHA256 = RBDM.files[8].sha256


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Iterator[Path]:
    """No weights anywhere (see weights_helpers.isolate); the logger restored afterwards."""
    isolate(monkeypatch, tmp_path)
    restore = restored_logger()
    yield tmp_path
    restore()


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as running:
        yield running


@pytest.fixture(scope="module")
def rbdm_h5(tmp_path_factory) -> bytes:
    """A stand-in of RBDM's published .h5, as bytes to serve."""
    return write_published_layout_standin(tmp_path_factory.mktemp("rbdm") / RBDM_FILE).read_bytes()


# --- one lookup for every family -------------------------------------------------------------


def test_every_family_has_one_lookup():
    lookups = weights_lookups()
    assert set(lookups) == set(FAMILIES) | {"emotic"}
    assert all(lookup.family == name and lookup.files for name, lookup in lookups.items())
    assert lookups["emonet"] is EMONET_LOOKUP and lookups["emotic"] == EMOTIC_LOOKUP
    assert lookups["rbdm"].env == "EMONET_RBDM_WEIGHTS"
    assert lookups["rbdm"].files == family("rbdm").weights
    assert {lookup.env for lookup in lookups.values()} == {
        "EMONET_WEIGHTS",
        "EMONET_RBDM_WEIGHTS",
        "EMONET_EMOTIC_WEIGHTS",
    }


def test_rbdm_lookup_order_and_messages(monkeypatch, isolated):
    explicit = write_file(isolated / "mine.h5")
    env_file = write_file(isolated / "env" / RBDM_FILE)
    checkout_file = write_file(isolated / "checkout" / RBDM_FILE)
    cache_file = write_file(isolated / "cache" / RBDM_FILE)
    monkeypatch.setenv("EMONET_WEIGHTS", str(explicit))  # EmoNet's variable is not RBDM's

    monkeypatch.setenv("EMONET_RBDM_WEIGHTS", str(env_file.parent))
    assert find_rbdm_weights(explicit) == explicit
    assert find_rbdm_weights() == env_file
    monkeypatch.delenv("EMONET_RBDM_WEIGHTS")
    assert find_rbdm_weights() == checkout_file
    checkout_file.unlink()
    assert find_rbdm_weights() == cache_file
    cache_file.unlink()
    with pytest.raises(WeightsError) as info:
        find_rbdm_weights()
    message = str(info.value)
    assert message.startswith(
        f"no RBDM weights in {isolated / 'checkout'}, {isolated / 'cache'}: "
        "run `emonet weights fetch rbdm`, or download "
    )
    assert f"{RBDM_FILE} (SHA-256 {RBDM_SHA256}) in {isolated / 'cache'}" in message
    assert RBDM.files[8].url in message and "EMONET_RBDM_WEIGHTS" in message
    assert "\n" not in message
    with pytest.raises(WeightsError, match=r"^--weights: .*nowhere\.h5 does not exist$"):
        find_rbdm_weights(isolated / "nowhere.h5")
    monkeypatch.setenv("EMONET_RBDM_WEIGHTS", str(isolated / "no_folder"))
    with pytest.raises(WeightsError, match=r"^EMONET_RBDM_WEIGHTS: .*no_folder does not exist$"):
        find_rbdm_weights()


def test_emotic_lookup_takes_the_converted_file_or_a_folder_of_the_published_ones(
    monkeypatch, isolated
):
    published = isolated / "published"
    for name in PUBLISHED_FILES:
        write_file(published / name)
    converted = write_file(isolated / "converted" / CONVERTED_FILE)
    assert find_emotic_weights(converted) == converted
    assert find_emotic_weights(converted.parent) == converted
    assert find_emotic_weights(published) == published
    write_file(published / CONVERTED_FILE)  # beside the published files, the converted wins
    assert find_emotic_weights(published) == published / CONVERTED_FILE
    (published / CONVERTED_FILE).unlink()

    monkeypatch.setenv("EMONET_EMOTIC_WEIGHTS", str(published))
    assert find_emotic_weights() == published
    assert find_emotic_weights(converted) == converted
    rows = weights_inventory(26, EMOTIC_LOOKUP)
    assert [(row.source, row.selected, row.verdict) for row in rows] == [
        ("EMONET_EMOTIC_WEIGHTS", True, "folder of the published files"),
        ("cache", False, "missing"),
    ]
    monkeypatch.delenv("EMONET_EMOTIC_WEIGHTS")
    checkout_file = write_file(isolated / "checkout" / CONVERTED_FILE)
    assert find_emotic_weights() == checkout_file
    checkout_file.unlink()
    cache_file = write_file(isolated / "cache" / CONVERTED_FILE, b"converted")
    assert find_emotic_weights() == cache_file
    (cache_row,) = [row for row in weights_inventory(26, EMOTIC_LOOKUP) if row.selected]
    assert cache_row.verdict == f"0.0 MB  present, SHA-256 {sha256(b'converted')}"
    cache_file.unlink()

    with pytest.raises(WeightsError) as info:
        find_emotic_weights()
    message = str(info.value)
    assert message.startswith(
        f"no EMOTIC weights in {isolated / 'checkout'}, {isolated / 'cache'}: download "
        "model_context1.pth, model_body1.pth, model_emotic1.pth, val_thresholds.npy from the "
        "Google Drive links in the README of https://github.com/Tandon-A/emotic"
    )
    assert "`emonet weights convert emotic DIR`" in message and "\n" not in message
    with pytest.raises(WeightsError, match=r"^--weights: .*nowhere does not exist$"):
        find_emotic_weights(isolated / "nowhere")


# --- fetch -------------------------------------------------------------------------------------


def test_fetch_rbdm_verifies_the_download_and_rbdm_then_finds_it(
    server, rbdm_h5, monkeypatch, tmp_path
):
    server.routes["/release/rbdm.h5"] = rbdm_h5
    cache = tmp_path / "cli_cache"
    env = {"EMONET_RBDM_WEIGHTS_URL": server.url("/release/rbdm.h5"), "EMONET_CACHE": str(cache)}
    # The stand-in is not the published file: its SHA-256 is refused and nothing is kept.
    line = error_line(run_cli("weights", "fetch", "rbdm", env=env))
    assert f"has SHA-256 {sha256(rbdm_h5)}, not the expected {RBDM_SHA256}" in line
    assert os.listdir(cache) == []

    env["EMONET_RBDM_WEIGHTS_SHA256_8"] = sha256(rbdm_h5)
    target = cache / RBDM_FILE
    for _ in range(2):  # the second finds the verified file there and asks nobody
        fetched = run_cli("weights", "fetch", "rbdm", env=env)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == f"{target}\n"
    assert server.requests == ["/release/rbdm.h5"] * 2
    assert target.read_bytes() == rbdm_h5 and os.listdir(cache) == [RBDM_FILE]

    monkeypatch.setenv("EMONET_CACHE", str(cache))
    assert find_rbdm_weights() == target
    loaded = load_rbdm(None, None, offline=True, progress=False)
    assert loaded.path == target and loaded.sha256 == sha256(rbdm_h5)


def test_fetch_rbdm_without_network_says_what_to_put_where(isolated):
    with pytest.raises(WeightsError) as info:
        fetch_weights(8, url="http://127.0.0.1:9/rbdm.h5", progress=False, lookup=RBDM)
    message = str(info.value)
    assert message.startswith("could not download http://127.0.0.1:9/rbdm.h5 (")
    assert message.endswith(
        f"place {RBDM_FILE} (SHA-256 {RBDM_SHA256}) in {isolated / 'cache'}, or set "
        "EMONET_RBDM_WEIGHTS or pass --weights to use a file elsewhere"
    )
    assert os.listdir(isolated / "cache") == []


def test_fetch_emotic_says_where_to_get_the_files(tmp_path):
    cache = tmp_path / "cli_cache"
    line = error_line(run_cli("weights", "fetch", "emotic", env={"EMONET_CACHE": str(cache)}))
    assert line.startswith("emonet: error: the EMOTIC weights cannot be downloaded: download ")
    assert "https://github.com/Tandon-A/emotic" in line
    assert "`emonet weights convert emotic DIR`" in line
    assert not cache.exists()


def test_nclass_is_checked_against_the_family(isolated):
    runner = CliRunner()
    refused = runner.invoke(cli, ["weights", "fetch", "rbdm", "--nclass", "5"])
    assert refused.exit_code == 2
    assert "'5': rbdm has only the 8-class file: leave --nclass out" in refused.output
    refused = runner.invoke(cli, ["weights", "path", "--nclass", "all"])
    assert refused.exit_code == 2 and "emonet has the 5- and 8-class files" in refused.output
    assert not (isolated / "cache").exists()


# --- list and path -----------------------------------------------------------------------------


def listing(stdout: str) -> dict[str, list[str]]:
    """`emonet weights list` by file: each heading's first words, and its lines."""
    sections: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if not line.startswith(" "):
            heading = line.split(":")[0]
            sections[heading] = [line]
        else:
            sections[heading].append(line)
    return sections


def test_list_shows_every_family(rbdm_h5, tmp_path):
    cache = tmp_path / "cli_cache"
    write_file(cache / "emonet_8.pth", b"emonet stand-in")
    write_file(cache / RBDM_FILE, rbdm_h5)
    write_file(cache / CONVERTED_FILE, b"converted stand-in")
    # The variables outrank the checkout's weights/ folder, whatever this checkout holds.
    env = {
        "EMONET_CACHE": str(cache),
        "EMONET_WEIGHTS": str(cache),
        "EMONET_WEIGHTS_SHA256_8": sha256(b"emonet stand-in"),
        "EMONET_RBDM_WEIGHTS": str(cache),
        "EMONET_EMOTIC_WEIGHTS": str(cache),
    }
    listed = run_cli("weights", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    sections = listing(listed.stdout)
    assert list(sections) == [
        "emonet 5-class model", "emonet 8-class model", "rbdm model", "emotic model",
    ]  # fmt: skip
    assert sections["rbdm model"][0] == f"rbdm model: {RBDM_FILE}, SHA-256 {RBDM_SHA256}"
    assert sections["emotic model"][0] == (
        f"emotic model: {CONVERTED_FILE}, made here (no published SHA-256)"
    )

    def row(heading: str, source: str) -> str:
        (line,) = [line for line in sections[heading] if line[4:].startswith(source + " ")]
        return line

    emonet_5 = row("emonet 5-class model", "EMONET_WEIGHTS")
    assert emonet_5.startswith("    ") and emonet_5.endswith("missing")
    emonet_8 = row("emonet 8-class model", "EMONET_WEIGHTS")
    assert emonet_8.startswith("  * ") and emonet_8.endswith("verified")
    rbdm = row("rbdm model", "EMONET_RBDM_WEIGHTS")
    assert rbdm.startswith("  * ") and str(cache / RBDM_FILE) in rbdm
    assert rbdm.endswith("MB  not the published file")
    emotic = row("emotic model", "EMONET_EMOTIC_WEIGHTS")
    assert emotic.startswith("  * ") and str(cache / CONVERTED_FILE) in emotic
    assert emotic.endswith(f"present, SHA-256 {sha256(b'converted stand-in')}")


def test_list_says_how_to_get_what_is_missing(isolated):
    result = CliRunner().invoke(cli, ["weights", "list"])
    assert result.exit_code == 0, result.output
    sections = listing(result.output)
    cache = isolated / "cache"
    assert sections["rbdm model"][-1] == (
        f"  none found: `emonet weights fetch rbdm` downloads it to {cache}"
    )
    assert sections["emotic model"][-1] == f"  none found: {EMOTIC_LOOKUP.how_to_get}"
    assert sections["emonet 5-class model"][-1].endswith("`emonet weights fetch --nclass 5`"
                                                         f" downloads it to {cache}")  # fmt: skip


def test_path_of_each_family(isolated):
    runner = CliRunner()
    rbdm_file = write_file(isolated / "cache" / RBDM_FILE)
    found = runner.invoke(cli, ["weights", "path", "rbdm"])
    assert found.exit_code == 0 and found.output == f"{rbdm_file}\n"
    missing = runner.invoke(cli, ["weights", "path", "emotic"])
    assert missing.exit_code == 1 and "no EMOTIC weights in " in missing.output
    assert "emonet weights convert emotic DIR" in missing.output
    emonet = runner.invoke(cli, ["weights", "path", "emonet", "--nclass", "5"])
    assert emonet.exit_code == 1 and "`emonet weights fetch --nclass 5`" in emonet.output
