"""Weights: safe loading and checks, resolution order, download against a local HTTP server,
and the `emonet weights` commands."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from local_server import Server, serving

from emonet_cli.cli import cli
from emonet_cli.errors import WeightsError
from emonet_cli.formats.fileio import current_umask
from emonet_cli.models import weights
from emonet_cli.models.emonet.checkpoint import build_model, load_model, load_state_dict
from emonet_cli.models.weights import (
    PUBLISHED,
    cache_dir,
    fetch_weights,
    find_weights,
    resolve_weights,
    sha256_file,
    weights_inventory,
)

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = b"stand-in weights for download tests\n" * 4096
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
ENV_NAMES = (
    "EMONET_WEIGHTS",
    "EMONET_WEIGHTS_URL",
    "EMONET_WEIGHTS_SHA256_5",
    "EMONET_WEIGHTS_SHA256_8",
    "EMONET_CACHE",
    "XDG_CACHE_HOME",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Iterator[Path]:
    """No weights anywhere: empty cache, no checkout folder, no overrides; the emonet logger
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


@pytest.fixture(scope="module")
def state_8(standin_weights) -> dict[str, torch.Tensor]:
    return load_state_dict(standin_weights[8])


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as running:
        yield running


@pytest.fixture
def dead_url() -> str:
    """A URL on a local port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/emonet_{{nclass}}.pth"


def write_file(path: Path, content: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- loading -------------------------------------------------------------------------------------


def test_published_layout_loads_with_prefix_stripped(standin_weights, state_8):
    loaded = load_model(weights=standin_weights[8])
    assert loaded.nclass == 8 and not loaded.model.training
    assert loaded.path == standin_weights[8]
    assert loaded.sha256 == hashlib.sha256(standin_weights[8].read_bytes()).hexdigest()
    assert "emo_fc_2.3.weight" in state_8 and not any(k.startswith("module.") for k in state_8)
    assert torch.equal(loaded.model.emo_fc_2[3].weight, state_8["emo_fc_2.3.weight"])


def test_state_dict_without_prefix_or_wrapped_loads_the_same(tmp_path, state_8):
    bare = tmp_path / "bare.pth"
    torch.save(state_8, bare)
    wrapped = tmp_path / "wrapped.pth"
    prefixed = {"module." + key: value for key, value in state_8.items()}
    torch.save({"state_dict": prefixed, "epoch": 12}, wrapped)
    for path in (bare, wrapped):
        loaded = load_state_dict(path)
        assert list(loaded) == list(state_8)
        assert all(torch.equal(loaded[key], state_8[key]) for key in state_8)
    assert build_model(load_state_dict(wrapped)).nclass == 8


@pytest.mark.parametrize("nclass", [5, 8])
def test_nclass_is_inferred_from_the_head(standin_weights, nclass):
    model = build_model(load_state_dict(standin_weights[nclass]))
    assert model.nclass == nclass and model.emo_fc_2[3].out_features == nclass + 2


def test_contradicting_nclass_is_refused(standin_weights):
    with pytest.raises(WeightsError, match=r"holds the 5-class model .*pass --nclass 5"):
        load_model(weights=standin_weights[5], nclass=8)


def test_missing_keys_are_named(state_8):
    state = dict(state_8)
    del state["conv1.weight"], state["m1.b1_4.bn2.running_var"]
    with pytest.raises(WeightsError, match="missing conv1.weight, m1.b1_4.bn2.running_var"):
        build_model(state, source="mine.pth")


def test_wrong_shapes_are_named(state_8):
    state = dict(state_8)
    state["l1.weight"] = torch.zeros(68, 128, 1, 1)
    with pytest.raises(WeightsError, match=r"mine.pth .*wrong shape l1.weight \(68x128x1x1, "):
        build_model(state, source="mine.pth")


def test_extra_keys_warn_but_load(state_8, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("emonet"), "propagate", True)
    state = {**state_8, "projection.weight": torch.zeros(3)}
    with caplog.at_level(logging.WARNING, logger="emonet"):
        model = build_model(state, source="mine.pth")
    assert model.nclass == 8
    assert "projection.weight" in caplog.text and "mine.pth" in caplog.text


def test_a_state_dict_of_another_model_is_refused(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(10, 512)}, path)
    with pytest.raises(WeightsError, match=r"holds no EmoNet weights.*fc\.weight"):
        load_model(weights=path)


def test_a_head_of_the_wrong_size_is_refused(state_8):
    state = {**state_8, "emo_fc_2.3.weight": torch.zeros(9, 128)}
    with pytest.raises(WeightsError, match="emo_fc_2.3.weight has shape 9x128"):
        build_model(state)


@pytest.mark.parametrize("damage", ["text", "empty", "truncated"])
def test_files_that_are_not_checkpoints_are_refused_by_name(tmp_path, standin_weights, damage):
    path = tmp_path / f"{damage}.pth"
    content = {
        "text": b"this is not a checkpoint\n",
        "empty": b"",
        "truncated": standin_weights[8].read_bytes()[:100_000],
    }[damage]
    path.write_bytes(content)
    with pytest.raises(
        WeightsError, match=f"{re.escape(str(path))} is not a PyTorch checkpoint"
    ) as info:
        load_state_dict(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content, message",
    [
        ([torch.zeros(2)], "holds a list, not a state dict"),
        ({"conv1.weight": torch.zeros(2), "epoch": 3}, "'epoch' is not a named tensor"),
    ],
)
def test_contents_that_are_not_state_dicts_are_refused(tmp_path, content, message):
    path = tmp_path / "odd.pth"
    torch.save(content, path)
    with pytest.raises(WeightsError, match=message):
        load_state_dict(path)


class WritesMarker:
    """Unpickling this would create `marker` (with open)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class RunsShell:
    """Unpickling this would create `marker` (with os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("payload", [WritesMarker, RunsShell])
@pytest.mark.parametrize("container", ["torch.save", "pickle"])
def test_malicious_pickles_are_refused_without_running(tmp_path, payload, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    state = {"conv1.weight": torch.zeros(1), "extra": payload(marker)}
    if container == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state))
    with pytest.raises(WeightsError, match=f"refusing to load {re.escape(str(path))}: "):
        load_model(weights=path)
    assert not marker.exists()


# --- hashing -------------------------------------------------------------------------------------


def test_sha256_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    path = write_file(tmp_path / "w.pth", b"first")
    hashed = []
    real_hash = weights.hash_contents
    monkeypatch.setattr(weights, "hash_contents", lambda p: hashed.append(p) or real_hash(p))
    assert sha256_file(path) == hashlib.sha256(b"first").hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(b"first").hexdigest()
    assert len(hashed) == 1
    path.write_bytes(b"second, longer")
    assert sha256_file(path) == hashlib.sha256(b"second, longer").hexdigest()
    assert len(hashed) == 2
    assert os.listdir(tmp_path) == ["w.pth"]  # no sidecar files


def test_sha256_of_a_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        sha256_file(tmp_path / "nothing.pth")


# --- download ------------------------------------------------------------------------------------


def test_fetch_downloads_and_verifies(server, tmp_path):
    server.routes["/w8.pth"] = PAYLOAD
    dest = tmp_path / "dest"
    path = fetch_weights(
        8, dest_dir=dest, url=server.url("/w8.pth"), sha256=PAYLOAD_SHA256, progress=False
    )
    assert path == dest / "emonet_8.pth" and path.read_bytes() == PAYLOAD
    assert os.listdir(dest) == ["emonet_8.pth"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    # A verified file already there is kept without asking the server again.
    again = fetch_weights(8, dest_dir=dest, url=server.url("/w8.pth"), sha256=PAYLOAD_SHA256)
    assert again == path and server.requests == ["/w8.pth"]


def test_corrupted_download_leaves_nothing(server, tmp_path):
    server.routes["/w8.pth"] = PAYLOAD
    dest = tmp_path / "dest"
    with pytest.raises(WeightsError, match=f"SHA-256 {PAYLOAD_SHA256}, not the expected"):
        fetch_weights(8, dest_dir=dest, url=server.url("/w8.pth"), progress=False)
    assert os.listdir(dest) == []


def test_truncated_download_leaves_nothing(server, tmp_path):
    server.routes["/w8.pth"] = PAYLOAD
    server.truncated.add("/w8.pth")
    dest = tmp_path / "dest"
    with pytest.raises(WeightsError, match=f"ended after {len(PAYLOAD) // 2} of {len(PAYLOAD)}"):
        fetch_weights(8, dest_dir=dest, url=server.url("/w8.pth"), sha256=PAYLOAD_SHA256)
    assert os.listdir(dest) == []


def test_refused_connection_says_what_to_put_where(dead_url, tmp_path):
    dest = tmp_path / "dest"
    url = dead_url.format(nclass=8)
    with pytest.raises(WeightsError) as info:
        fetch_weights(8, dest_dir=dest, url=url, progress=False)
    message = str(info.value)
    assert f"could not download {url} (" in message and "\n" not in message
    assert f"place emonet_8.pth (SHA-256 {PUBLISHED[8].sha256}) in {dest}" in message
    assert os.listdir(dest) == []


def test_http_404_is_reported(server, tmp_path):
    with pytest.raises(WeightsError, match=r"could not download .*/missing.pth \(HTTP 404 "):
        fetch_weights(5, dest_dir=tmp_path, url=server.url("/missing.pth"), progress=False)
    assert os.listdir(tmp_path) == []


def test_a_silent_server_times_out(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/emonet_8.pth"
        with pytest.raises(WeightsError, match=r"\(no answer within 0.3 s\)"):
            fetch_weights(8, dest_dir=tmp_path, url=url, timeout=0.3)
    assert os.listdir(tmp_path) == []


def test_failed_fetch_keeps_an_existing_file_and_a_good_one_replaces_it(server, tmp_path):
    existing = write_file(tmp_path / "emonet_8.pth", b"fine-tuned")
    server.routes["/w8.pth"] = PAYLOAD
    with pytest.raises(WeightsError):
        fetch_weights(8, dest_dir=tmp_path, url=server.url("/missing.pth"), sha256=PAYLOAD_SHA256)
    assert existing.read_bytes() == b"fine-tuned"
    fetch_weights(8, dest_dir=tmp_path, url=server.url("/w8.pth"), sha256=PAYLOAD_SHA256)
    assert existing.read_bytes() == PAYLOAD and os.listdir(tmp_path) == ["emonet_8.pth"]


def test_environment_overrides_url_and_hash(server, monkeypatch, isolated):
    server.routes["/mirror/emonet_5.pth"] = PAYLOAD
    monkeypatch.setenv("EMONET_WEIGHTS_URL", server.url("/mirror/emonet_{nclass}.pth"))
    monkeypatch.setenv("EMONET_WEIGHTS_SHA256_5", PAYLOAD_SHA256.upper())
    path = resolve_weights(5, progress=False)
    assert path == isolated / "cache" / "emonet_5.pth" and path.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("EMONET_WEIGHTS_URL", "http://mirror/emonet.pth", "must contain {nclass}"),
        ("EMONET_WEIGHTS_SHA256_8", "abc123", "is not a SHA-256"),
    ],
)
def test_malformed_overrides_are_refused(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(WeightsError, match=message):
        fetch_weights(8, progress=False)


def test_offline_without_weights_says_what_to_put_where(isolated):
    with pytest.raises(WeightsError) as info:
        resolve_weights(8, offline=True)
    message = str(info.value)
    assert "--offline" in message and PUBLISHED[8].url in message and "\n" not in message
    assert f"emonet_8.pth (SHA-256 {PUBLISHED[8].sha256}) in {isolated / 'cache'}" in message


# --- resolution order ----------------------------------------------------------------------------


def test_cache_dir_follows_emonet_cache_then_xdg_then_home(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("EMONET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "emonet"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "emonet"


def test_resolution_order(monkeypatch, isolated):
    explicit = write_file(isolated / "mine.pth")
    env_file = write_file(isolated / "env_file.pth")
    env_folder_file = write_file(isolated / "env_folder" / "emonet_8.pth")
    checkout_file = write_file(isolated / "checkout" / "emonet_8.pth")
    cache_file = write_file(isolated / "cache" / "emonet_8.pth")

    monkeypatch.setenv("EMONET_WEIGHTS", str(env_file))
    assert find_weights(8, explicit) == explicit
    assert find_weights(8) == env_file
    monkeypatch.setenv("EMONET_WEIGHTS", str(env_folder_file.parent))
    assert find_weights(8) == env_folder_file
    assert find_weights(8, explicit) == explicit
    assert find_weights(5) is None  # the folders hold no 5-class file
    monkeypatch.delenv("EMONET_WEIGHTS")
    assert find_weights(8) == checkout_file
    checkout_file.unlink()
    assert find_weights(8) == cache_file
    cache_file.unlink()
    assert find_weights(8) is None


def test_named_paths_that_do_not_exist_are_errors(monkeypatch, isolated):
    write_file(isolated / "cache" / "emonet_8.pth")
    with pytest.raises(WeightsError, match=r"--weights: .*nowhere.pth does not exist"):
        find_weights(8, isolated / "nowhere.pth")
    monkeypatch.setenv("EMONET_WEIGHTS", str(isolated / "no_folder"))
    with pytest.raises(WeightsError, match=r"EMONET_WEIGHTS: .*no_folder does not exist"):
        find_weights(8)


def test_load_model_infers_nclass_only_from_a_named_file(standin_weights, monkeypatch, isolated):
    cache = isolated / "cache"
    cache.mkdir()
    (cache / "emonet_8.pth").symlink_to(standin_weights[8])
    assert load_model(offline=True).nclass == 8
    monkeypatch.setenv("EMONET_WEIGHTS", str(standin_weights[5]))
    assert load_model(offline=True).nclass == 5
    monkeypatch.delenv("EMONET_WEIGHTS")
    # A file found by name must hold the model its name says.
    (cache / "emonet_8.pth").unlink()
    (cache / "emonet_8.pth").symlink_to(standin_weights[5])
    with pytest.raises(WeightsError, match="holds the 5-class model"):
        load_model(offline=True)


def test_inventory_lists_every_place_and_what_is_there(monkeypatch, isolated):
    monkeypatch.setenv("EMONET_WEIGHTS_SHA256_8", PAYLOAD_SHA256)
    write_file(isolated / "checkout" / "emonet_8.pth", b"fine-tuned")
    write_file(isolated / "cache" / "emonet_8.pth", PAYLOAD)
    rows = weights_inventory(8)
    assert [(row.source, row.selected) for row in rows] == [("checkout", True), ("cache", False)]
    assert rows[0].verdict == "0.0 MB  not the published file"
    assert rows[1].verified and rows[1].verdict.endswith("verified")
    assert weights_inventory(5)[1].verdict == "missing"


# --- command line --------------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "emonet_cli", *args],
        env={**clean, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_fetch_list_and_path(server, tmp_path):
    server.routes["/mirror/emonet_5.pth"] = PAYLOAD
    cache = tmp_path / "cli_cache"
    env = {
        "EMONET_WEIGHTS_URL": server.url("/mirror/emonet_{nclass}.pth"),
        "EMONET_WEIGHTS_SHA256_5": PAYLOAD_SHA256,
        "EMONET_CACHE": str(cache),
    }
    fetched = run_cli("weights", "fetch", "--nclass", "5", env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(cache / "emonet_5.pth")
    assert (cache / "emonet_5.pth").read_bytes() == PAYLOAD

    # EMONET_WEIGHTS outranks the checkout's weights/ folder, whatever this checkout holds.
    env["EMONET_WEIGHTS"] = str(cache)
    listed = run_cli("weights", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"5-class model: emonet_5.pth, SHA-256 {PAYLOAD_SHA256}" in listed.stdout
    env_row = next(line for line in listed.stdout.splitlines() if "EMONET_WEIGHTS" in line)
    assert env_row.startswith("  * ") and str(cache / "emonet_5.pth") in env_row
    assert env_row.endswith("verified")

    path = run_cli("weights", "path", "--nclass", "5", env=env)
    assert path.returncode == 0 and path.stdout.strip() == str(cache / "emonet_5.pth")


def test_cli_without_network_fails_with_one_line(dead_url, tmp_path):
    env = {"EMONET_WEIGHTS_URL": dead_url, "EMONET_CACHE": str(tmp_path / "cli_cache")}
    result = run_cli("weights", "fetch", "--nclass", "8", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("emonet: error:")]
    assert len(errors) == 1
    assert f"emonet_8.pth (SHA-256 {PUBLISHED[8].sha256}) in {tmp_path / 'cli_cache'}" in errors[0]
    assert result.stdout == "" and os.listdir(tmp_path / "cli_cache") == []


def test_cli_path_without_weights_exits_1(isolated):
    result = CliRunner().invoke(cli, ["weights", "path", "--nclass", "5"])
    assert result.exit_code == 1
    assert "emonet weights fetch --nclass 5" in result.output
    assert str(isolated / "cache") in result.output


def test_cli_fetch_all(server, isolated):
    for n in (5, 8):
        server.routes[f"/emonet_{n}.pth"] = PAYLOAD + bytes([n])
    env = {
        "EMONET_WEIGHTS_URL": server.url("/emonet_{nclass}.pth"),
        "EMONET_WEIGHTS_SHA256_5": hashlib.sha256(PAYLOAD + bytes([5])).hexdigest(),
        "EMONET_WEIGHTS_SHA256_8": hashlib.sha256(PAYLOAD + bytes([8])).hexdigest(),
    }
    dest = isolated / "dest"
    result = CliRunner().invoke(
        cli, ["weights", "fetch", "--nclass", "all", "--dest", str(dest)], env=env
    )
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(dest)) == ["emonet_5.pth", "emonet_8.pth"]
