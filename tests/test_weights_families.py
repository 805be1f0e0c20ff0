"""Every family's weights through one lookup and `emonet weights`: RBDM's file fetched from a
local HTTP server by the EmoNet download code and then found by RBDM's loader, EMOTIC's
published files converted (real `python -m emonet_cli` runs) and found, the listing of every
family, and the one weights-only loader that EmoNet's and EMOTIC's files share."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from local_server import Server, serving
from standin import EMOTIC_SEED, Emotic, fill, published_names, write_published
from test_faults import freezable_folder
from torch import nn

from emonet_cli.cli import cli
from emonet_cli.errors import WeightsError
from emonet_cli.models import weights
from emonet_cli.models.emonet.checkpoint import read_checkpoint
from emonet_cli.models.emotic import safeload
from emonet_cli.models.emotic.lookup import (
    CONVERTED_FILE,
    EMOTIC_LOOKUP,
    PUBLISHED_FILES,
    find_emotic_weights,
)
from emonet_cli.models.published import EMONET_LOOKUP
from emonet_cli.models.rbdm.h5weights import write_standin_h5
from emonet_cli.models.rbdm.inference import find_rbdm_weights, load_rbdm
from emonet_cli.models.registry import FAMILIES, family, weights_lookups
from emonet_cli.models.weights import fetch_weights, weights_inventory

REPO = Path(__file__).resolve().parent.parent
RBDM = family("rbdm").lookup
RBDM_FILE = RBDM.files[8].filename
RBDM_SHA256 = RBDM.files[8].sha256
ENV_NAMES = (
    "EMONET_WEIGHTS",
    "EMONET_WEIGHTS_URL",
    "EMONET_WEIGHTS_SHA256_5",
    "EMONET_WEIGHTS_SHA256_8",
    "EMONET_RBDM_WEIGHTS",
    "EMONET_RBDM_WEIGHTS_URL",
    "EMONET_RBDM_WEIGHTS_SHA256_8",
    "EMONET_EMOTIC_WEIGHTS",
    "EMONET_CACHE",
    "XDG_CACHE_HOME",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Iterator[Path]:
    """No weights anywhere: empty cache, no checkout folder, no variables; the emonet logger
    is restored after tests that run the CLI in-process."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMONET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "CHECKOUT_WEIGHTS_DIR", tmp_path / "checkout")
    logger = logging.getLogger("emonet")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield tmp_path
    logger.handlers[:], logger.propagate = saved[0], saved[2]
    logger.setLevel(saved[1])


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as running:
        yield running


@pytest.fixture(scope="module")
def rbdm_h5(tmp_path_factory) -> bytes:
    """A stand-in of RBDM's published .h5, as bytes to serve."""
    return write_standin_h5(tmp_path_factory.mktemp("rbdm") / RBDM_FILE).read_bytes()


@pytest.fixture(scope="module")
def published_emotic(tmp_path_factory) -> Path:
    """A folder of stand-ins of EMOTIC's four published files."""
    folder = tmp_path_factory.mktemp("emotic") / "published"
    write_published(folder)
    return folder


def run_cli(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "emonet_cli", *map(str, args)],
        env={**clean, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a run that failed as a user's mistake should: status 1, no
    traceback, nothing on stdout."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("emonet: error:")]
    return line


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, content: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def linked_copy(folder: Path, to: Path, leave_out: tuple[str, ...] = ()) -> Path:
    to.mkdir()
    for name in PUBLISHED_FILES:
        if name not in leave_out:
            os.link(folder / name, to / name)
    return to


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


# --- convert -----------------------------------------------------------------------------------


def test_convert_emotic_writes_a_weights_only_file_that_is_then_found(
    published_emotic, monkeypatch, tmp_path
):
    cache = tmp_path / "cli_cache"
    converted = run_cli("weights", "convert", "emotic", published_emotic, env={
        "EMONET_CACHE": str(cache)
    })  # fmt: skip
    assert converted.returncode == 0, converted.stderr
    target = cache / CONVERTED_FILE
    assert converted.stdout == f"{target}\nSHA-256 {sha256(target.read_bytes())}\n"
    assert os.listdir(cache) == [CONVERTED_FILE]  # no part file left
    state = torch.load(target, map_location="cpu", weights_only=True)
    expected = safeload.read_published(published_emotic).state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in expected)

    monkeypatch.setenv("EMONET_CACHE", str(cache))
    assert find_emotic_weights() == target
    dest = tmp_path / "elsewhere" / "weights"  # made as needed
    again = run_cli("weights", "convert", "emotic", published_emotic, "--dest", dest)
    assert again.returncode == 0, again.stderr
    # The same files give the same bytes, so the SHA-256 printed identifies the conversion.
    assert again.stdout == converted.stdout.replace(str(target), str(dest / CONVERTED_FILE))


class SystemPayload:
    """Unpickling this would create `marker` with os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def save_fusion(folder: Path, fusion: nn.Module) -> None:
    with published_names():
        torch.save(fusion, folder / "model_emotic1.pth")


def refused_source(case: str, published: Path, tmp_path: Path) -> tuple[Path, str]:
    """A SRC_DIR that `convert` must refuse, and what its message says."""
    if case == "a file missing":
        return linked_copy(published, tmp_path / "src", ("model_body1.pth",)), "lacks model_body1"
    if case == "no such folder":
        return tmp_path / "nowhere", "cannot read the EMOTIC folder "
    if case == "a file, not a folder":
        return write_file(tmp_path / "weights.zip"), "Not a directory"
    src = linked_copy(published, tmp_path / "src", ("model_emotic1.pth",))
    fusion = Emotic()
    fill(fusion, np.random.Generator(np.random.PCG64(EMOTIC_SEED)))
    if case == "a code payload":
        fusion.extra = SystemPayload(tmp_path / "ran")
        save_fusion(src, fusion)
        return src, "posix.system" if os.name == "posix" else "nt.system"
    fusion.fc_cat = nn.Linear(256, 25)  # case "wrong shapes"
    save_fusion(src, fusion)
    return src, "wrong shape fc_cat.weight (25x256, expected 26x256)"


@pytest.mark.parametrize(
    "case",
    ["a file missing", "no such folder", "a file, not a folder", "a code payload", "wrong shapes"],
)
def test_convert_refusals_are_one_line_and_write_nothing(case, published_emotic, tmp_path):
    src, expected = refused_source(case, published_emotic, tmp_path)
    dest = tmp_path / "dest"
    line = error_line(run_cli("weights", "convert", "emotic", src, "--dest", dest))
    assert expected in line and str(src) in line
    assert not dest.exists() and not (tmp_path / "ran").exists()


def test_convert_into_a_read_only_folder_is_one_line(published_emotic, tmp_path):
    with freezable_folder(tmp_path / "frozen") as (frozen, freeze):
        freeze()
        proc = run_cli("weights", "convert", "emotic", published_emotic, "--dest", frozen)
        line = error_line(proc)
        assert line.startswith(f"emonet: error: cannot write {frozen / CONVERTED_FILE}: ")
        assert "Read-only file system" in line or "Permission denied" in line
        assert os.listdir(frozen) == []


# --- one weights-only loader -------------------------------------------------------------------


def damaged_file(damage: str, path: Path) -> tuple[Path, str]:
    state = {"fc.weight": torch.ones(4, 3), "fc.bias": torch.zeros(4)}
    if damage == "text":
        path.write_bytes(b"this is not a checkpoint\n")
        return path, "is not a PyTorch checkpoint, or it is truncated or corrupt"
    if damage == "truncated":
        torch.save({"w": torch.zeros(20_000)}, path)
        path.write_bytes(path.read_bytes()[:30_000])
        return path, "is not a PyTorch checkpoint, or it is truncated or corrupt"
    if damage == "nan":
        state["fc.bias"][2] = float("inf")
        torch.save(state, path)
        return path, "damaged weights: fc.bias holds NaN or infinite values"
    if damage == "not tensors":
        torch.save({**state, "epoch": 3}, path)
        return path, "is not a state dict (names to tensors): 'epoch' is not a named tensor"
    torch.save({**state, "payload": SystemPayload(path.parent / "ran")}, path)  # "code"
    return path, "refusing to load"


@pytest.mark.parametrize("damage", ["text", "truncated", "nan", "not tensors", "code"])
def test_emonet_and_emotic_files_are_refused_alike(damage, tmp_path):
    path, expected = damaged_file(damage, tmp_path / "damaged.pth")
    with pytest.raises(WeightsError) as emonet:
        read_checkpoint(path)
    with pytest.raises(WeightsError) as emotic:
        safeload.read_converted(path)
    assert str(emonet.value).startswith(str(path)) or damage == "code"
    assert expected in str(emonet.value) and "\n" not in str(emonet.value)
    if damage == "code":  # EMOTIC's says what to do with a published file given alone
        assert str(emotic.value).startswith(str(emonet.value) + "; a published EMOTIC file")
        assert not (tmp_path / "ran").exists()
    else:
        assert str(emotic.value) == str(emonet.value)
