"""What a person's label is (formats/person_labels): the one rule for the files writers name
and for the earlier results `leftovers` recognises."""

from __future__ import annotations

import pickle

import pytest

from emonet_cli.faces.face import face_id, person_label
from emonet_cli.formats.leftovers import person_results
from emonet_cli.formats.person_labels import RESERVED, is_person_label, name_problem
from emonet_cli.models.registry import FAMILIES
from emonet_cli.outputs.results import SUMMARY_SUFFIX
from emonet_cli.outputs.writers import FACES_SUFFIX, family_outputs


def test_no_name_can_be_a_word_of_an_output_file():
    words = {".".join(o.suffix.split(".")[:-1]).strip(".") for f in FAMILIES.values()
             for o in family_outputs(f)}  # fmt: skip
    words |= {w for suffix in (FACES_SUFFIX, SUMMARY_SUFFIX, ".keypoints.stream")
              for w in suffix.split(".") if w}  # fmt: skip
    words = {w for word in words for w in word.split(".") if w}
    assert words <= RESERVED, sorted(words - RESERVED)
    for word in words:
        assert name_problem(word) is not None and name_problem(word.upper()) is not None


@pytest.mark.parametrize(
    "name", ["face3", "Face12", "3alice", "al.ice", "", "a" * 65, "anne marie"]
)
def test_names_that_cannot_be_labels(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["alice", "Bob", "p_01", "anne-marie", "facial"])
def test_names_that_can(name):
    assert name_problem(name) is None


def test_a_label_carries_its_number_everywhere():
    named = person_label(2, "alice")
    assert named == "alice" and face_id(named) == 2
    assert face_id(person_label(7)) == 7 and person_label(7) == "face7"
    assert face_id("face12") == 12  # read back from a summary
    copy = pickle.loads(pickle.dumps(named))
    assert copy == "alice" and face_id(copy) == 2
    with pytest.raises(ValueError):
        face_id("alice")


def test_leftovers_recognise_gallery_names_only_when_told(tmp_path):
    for name in ("S.face2.csv", "S.alice.csv", "S.notes.csv", "S.faces.csv", "S.csv"):
        (tmp_path / name).write_text("x")
    found = {p.name for p in person_results(tmp_path, "S", {".csv"})}
    assert found == {"S.face2.csv", "S.faces.csv"}  # a user's S.notes.csv is never theirs
    found = {p.name for p in person_results(tmp_path, "S", {".csv"}, ["alice"])}
    assert found == {"S.face2.csv", "S.alice.csv", "S.faces.csv"}
    assert is_person_label("face1") and not is_person_label("alice")
