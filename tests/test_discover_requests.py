"""What the module checks in a request before any work, on DISCOVER's own SessionManager: the
folders of its file outputs (given as `uri` or as hcai-discover-utils 1.2's `uri_template`
with `{dataset}` and `{session}`) and the expression classes a request may declare."""

from __future__ import annotations

import os

import pytest
from discover_utils.data.provider.data_manager import SessionManager

from emonet_cli.constants import CLASS_NAMES
from emonet_cli.discover.outputs import check_declared_classes, check_output_folders, output_file
from emonet_cli.discover.spec import RequestError


def session(*outputs: dict) -> SessionManager:
    described = [{"type": "output", "src": "file:annotation:continuous", **o} for o in outputs]
    return SessionManager(dataset="affect", data_description=described, session="s01")


def test_a_uri_template_is_filled_in_with_the_dataset_and_session(tmp_path):
    (tmp_path / "affect" / "s01").mkdir(parents=True)
    template = str(tmp_path / "{dataset}" / "{session}" / "valence.annotation")
    run = session({"id": "valence", "uri_template": template})
    (description,) = run.data_description
    assert output_file(run, description) == tmp_path / "affect" / "s01" / "valence.annotation"
    check_output_folders(run, ["valence"])  # the session's folder exists
    other = SessionManager("affect", run.data_description, "s02")
    with pytest.raises(RequestError, match=r"^output 'valence': cannot write .*s02/valence"):
        check_output_folders(other, ["valence"])


def test_a_missing_folder_is_refused_in_one_line_and_inactive_outputs_are_not_checked(tmp_path):
    missing = tmp_path / "absent" / "arousal.annotation"
    run = session({"id": "arousal", "uri": str(missing)})
    expected = f"output 'arousal': cannot write {missing}: no folder {missing.parent} (DISCOVER"
    with pytest.raises(RequestError, match="^" + expected.replace("(", r"\(")):
        check_output_folders(run, ["arousal"])
    check_output_folders(run, [])  # not an output to compute


def test_a_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    run = session({"id": "valence", "uri": str(tmp_path / "file" / "valence.annotation")})
    with pytest.raises(RequestError, match="no folder"):
        check_output_folders(run, ["valence"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    run = session({"id": "valence", "uri": str(locked / "valence.annotation")})
    with pytest.raises(RequestError, match="is not writable"):
        check_output_folders(run, ["valence"])


def test_database_outputs_name_no_file(tmp_path):
    run = session({"id": "valence", "src": "db:annotation:continuous", "scheme": "valence"})
    check_output_folders(run, ["valence"])


def test_declared_classes_must_be_the_models():
    names = list(CLASS_NAMES[8])
    ours = {str(i): {"name": name} for i, name in enumerate(names)}
    check_declared_classes(session({"id": "expression", "classes": ours}), ["expression"], names)
    check_declared_classes(session({"id": "expression"}), ["expression"], names)  # none given
    swapped = {**ours, "0": {"name": names[1]}, "1": {"name": names[0]}}
    with pytest.raises(RequestError, match=r"^output 'expression': the request's classes \(Happy"):
        check_declared_classes(
            session({"id": "expression", "classes": swapped}), ["expression"], names
        )
    with pytest.raises(RequestError, match="classes must map ids"):
        check_declared_classes(
            session({"id": "expression", "classes": {"a": {"name": "x"}}}), ["expression"], names
        )
