"""`emonet weights convert emotic` through real `python -m emonet_cli` runs: EMOTIC's published
files (stand-ins, see standin.py) into a weights-only file that is then found, and its
refusals; and the one weights-only loader that EmoNet's and EMOTIC's files share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from standin import EMOTIC_SEED, Emotic, fill, published_names, write_published
from test_faults import freezable_folder
from torch import nn
from weights_helpers import error_line, isolate, linked_copy, run_cli, sha256, write_file

from emonet_cli.errors import WeightsError
from emonet_cli.models.emonet.checkpoint import read_checkpoint
from emonet_cli.models.emotic import safeload
from emonet_cli.models.emotic.lookup import CONVERTED_FILE, find_emotic_weights


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path) -> Iterator[Path]:
    """No weights anywhere for what runs in-process (see weights_helpers.isolate)."""
    isolate(monkeypatch, tmp_path)
    yield tmp_path


@pytest.fixture(scope="module")
def published_emotic(tmp_path_factory) -> Path:
    """A folder of stand-ins of EMOTIC's four published files."""
    folder = tmp_path_factory.mktemp("emotic") / "published"
    write_published(folder)
    return folder


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
