"""People = position + identity: the person number of every face, frame by frame.

Position (`tracking.Tracker`) links a face to the same face in the frame before: cheap, and
right within a shot. Its links are tracks; identity gives each track its person:

- when a track starts (a new face, a return after longer than the patience, every face after
  a cut: `cuts` ends all tracks there), from up to START_LOOKS frames of the track spread over
  the chunk of frames at hand (`people.FACE_CHUNK`), decided by `rule`: a person already seen
  in this input (or of the gallery) resumes their number, someone new gets the next one;
- every RECHECK_S seconds inside a track, from one frame; where that frame is unlike the
  track's person, up to CONFIRM_LOOKS frames decide, and if they say another person, the
  track is split there: a number never holds two people;
- a face too small or too blurred to describe (`descriptor`) keeps the person its position
  gives; a track that starts so gets a new number until a frame can be described.

Describing costs about 80 ms of CPU per face, so only these frames are described.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from emonet_cli.faces.face import FrameFace
from emonet_cli.faces.identity.cuts import CutDetector
from emonet_cli.faces.identity.rule import PeopleBook
from emonet_cli.faces.tracking import Tracker
from emonet_cli.media.frames import Frame

START_LOOKS = 3  # frames described to decide who a new track is
CONFIRM_LOOKS = 3  # frames that confirm a track changed person before it is split
RECHECK_S = 2.0  # seconds between identity checks inside a track
MAX_TRIES = 6  # frames tried per decision (some may be too small or blurred to describe)


@dataclass
class _Track:
    person: int
    checked: int  # frame index of the last identity check
    verified: bool = True  # False: started without a description (position only)
    suspect: list = field(default_factory=list)  # descriptors unlike the person, not yet decided


@dataclass
class PersonRecord:
    """What the summary tells of a person: frames they hold, identity decisions that gave or
    kept them, and their gallery name."""

    frames: int = 0
    decisions: int = 0
    checks: int = 0
    name: str | None = None

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "identity_decisions": self.decisions,
            "identity_checks": self.checks,
            "gallery_name": self.name,
        }


class IdentityTracker:
    """Person numbers of each frame's detections (see the module docstring). `book` holds
    the gallery's people (numbers 1..G, `names`) or nothing; `describer` describes faces."""

    def __init__(
        self,
        fps: float,
        describer,
        *,
        max_faces: int = 1,
        patience: float = 1.0,
        confirm: int = 1,
        book: PeopleBook | None = None,
        names: dict[int, str] | None = None,
    ):
        self.tracker = Tracker(fps, max_faces=max_faces, patience=patience, confirm=confirm)
        self.describer = describer
        self.book = book or PeopleBook()
        self.names = dict(names or {})
        self.next_number = max([0, *self.book.kept, *self.names]) + 1
        self.recheck_frames = max(1, round(RECHECK_S * fps))
        self.cuts = CutDetector()
        self.tracks: dict[int, _Track] = {}
        self.records: dict[int, PersonRecord] = {}
        self.cut_count = 0
        self.gallery = None  # where `book` and `names` came from (gallery.Gallery)

    def update(self, frames: Sequence[Frame], faces: Sequence[list[FrameFace]]):
        """For each frame of a chunk, {person number: face} of its faces, each face carrying
        its `distance` to its person where it was described."""
        tracked = []  # per frame: [(track, face)]
        for frame, found in zip(frames, faces):
            if self.cuts.is_cut(frame):
                self.tracker.forget_all()
                self.cut_count += 1
            boxes = np.array([face.box for face in found], dtype=np.float64).reshape(-1, 4)
            scores = np.array([face.conf for face in found])
            ids = self.tracker.update(frame.index, boxes, scores)
            tracked.append([(int(t), face) for face, t in zip(found, ids) if t > 0])
        # person[row][track], and the distance of described faces
        owner: list[dict[int, int]] = [{} for _ in frames]
        distance: dict[tuple[int, int], float] = {}
        rows_of: dict[int, list[int]] = {}
        for row, pairs in enumerate(tracked):
            for track, _ in pairs:
                rows_of.setdefault(track, []).append(row)
        new = [t for t in rows_of if t not in self.tracks]
        for track in [t for t in rows_of if t in self.tracks]:
            if track not in self.tracks:  # its person went to another track: decide anew
                new.append(track)
                continue
            self._continue(track, rows_of[track], frames, tracked, owner, distance)
        self._start(new, rows_of, frames, tracked, owner, distance)
        for people in owner:
            if len(people) > 1:
                self.book.note_apart(set(people.values()))
        result = []
        for row, pairs in enumerate(tracked):
            faces_of_row = {}
            for track, face in pairs:
                person = owner[row][track]
                self.records.setdefault(person, PersonRecord(name=self.names.get(person)))
                self.records[person].frames += 1
                if (row, track) in distance:
                    face = replace(face, distance=distance[(row, track)])
                faces_of_row[person] = face
            result.append(faces_of_row)
        return result

    # -- new tracks -----------------------------------------------------------------------

    def _start(self, new, rows_of, frames, tracked, owner, distance) -> None:
        looks = {t: self._describe(t, rows_of[t], frames, tracked, START_LOOKS) for t in new}
        undecided = list(new)
        while undecided:
            # The surest first: the track nearest to someone known takes them.
            options = []
            for track in undecided:
                rows, query = looks[track]
                excluded = self._present_with(track, rows_of[track], owner)
                decision = self.book.decide(query, excluded) if len(query) else None
                options.append((decision.distance if decision else np.inf, track, decision))
            _, track, decision = min(options, key=lambda option: option[:2])
            undecided.remove(track)
            rows, query = looks[track]
            first = rows_of[track][0]
            if decision is None:  # nothing to describe: position alone
                person = self._new_person()
                self.tracks[track] = _Track(person, frames[first].index, verified=False)
            else:
                sure_match = decision.person is not None and decision.sure
                person = decision.person if sure_match else self._new_person()
                self._take_over(person, track)
                self.tracks[track] = _Track(person, frames[rows[-1]].index)
                self.records.setdefault(person, PersonRecord(name=self.names.get(person)))
                self.records[person].decisions += 1
                for k, row in enumerate(rows):
                    distance[(row, track)] = self._distance(person, query, k)
                self.book.learn(person, query)
            for row in rows_of[track]:
                owner[row][track] = person

    # -- running tracks -------------------------------------------------------------------

    def _continue(self, track, rows, frames, tracked, owner, distance) -> None:
        state = self.tracks[track]
        split_at = None
        due = [r for r in rows if frames[r].index - state.checked >= self.recheck_frames]
        if state.suspect or not state.verified:
            due = rows
        if due:
            looked, query = self._describe(track, due, frames, tracked, 1)
            if len(query):
                state.checked = frames[looked[0]].index
                split_at = self._check(track, state, due, looked, query, frames, tracked, owner)
                if split_at is None:
                    for k, row in enumerate(looked):
                        distance[(row, track)] = self._distance(state.person, query, k)
        for row in rows:
            if split_at is not None and row == split_at:
                state = self.tracks[track]  # the track's new person from here on
            owner[row][track] = state.person
        if split_at is not None:
            distance.update(self._split_distances)

    def _check(self, track, state, due, looked, query, frames, tracked, owner):
        """One check of a running track; the row from which it is someone else, or None."""
        self.records[state.person].checks += 1
        excluded = self._present_with(track, due, owner) - {state.person}
        if not state.verified:
            decision = self.book.decide(query, excluded - {state.person})
            if decision.person not in (None, state.person) and decision.sure:
                return self._split(track, looked[0], decision.person, query, looked)
            self.book.learn(state.person, query)
            state.verified = True
            return None
        own = self.book.distances(query).get(state.person, np.inf)
        decision = self.book.decide(query, excluded)
        if own < self._still_same(decision) or decision.person == state.person:
            state.suspect = []
            if decision.sure and decision.person == state.person:
                self.book.learn(state.person, query)
            return None
        # Unlike the person: confirm over more frames before splitting.
        later = [r for r in due if r > looked[0]]
        more_rows, more = self._describe(track, later, frames, tracked, CONFIRM_LOOKS - 1)
        suspect = state.suspect + [(looked[0], query[0])]
        suspect += list(zip(more_rows, more))
        if len(suspect) < CONFIRM_LOOKS:
            state.suspect = suspect
            return None
        state.suspect = []
        rows = [row for row, _ in suspect]
        descriptors = np.array([d for _, d in suspect])
        own = self.book.distances(descriptors).get(state.person, np.inf)
        decision = self.book.decide(descriptors, excluded)
        if own < self._still_same(decision) or decision.person == state.person:
            return None
        person = decision.person if decision.person is not None and decision.sure else None
        # Suspect frames of an earlier chunk are already written: the split starts here.
        return self._split(track, max(min(rows), due[0]), person, descriptors, rows)

    @staticmethod
    def _still_same(decision) -> float:
        """How near its person a running track's face must stay: MATCH_DISTANCE, or nearer
        than the other person the rule found (relative, as for new tracks)."""
        from emonet_cli.faces.identity.rule import MARGIN, MATCH_DISTANCE

        if decision.person is None:
            return MATCH_DISTANCE
        return max(MATCH_DISTANCE, decision.distance + MARGIN)

    def _split(self, track, row, person, query, rows):
        """From `row` on, `track` is `person` (None: someone new)."""
        person = self._new_person() if person is None else person
        self._take_over(person, track)
        self.tracks[track] = _Track(person, 0)
        self.records.setdefault(person, PersonRecord(name=self.names.get(person)))
        self.records[person].decisions += 1
        self._split_distances = {
            (r, track): self._distance(person, query, k) for k, r in enumerate(rows) if r >= row
        }
        self.book.learn(person, query)
        return row

    # -- helpers --------------------------------------------------------------------------

    def _describe(self, track, rows, frames, tracked, wanted):
        """Descriptors of `track`'s face in up to `wanted` of `rows`, spread over them."""
        if not rows:
            return [], np.zeros((0, 128), np.float32)
        tries = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), MAX_TRIES)).round())
        order = [rows[int(i)] for i in tries]
        # Spread: the first, the last, then the middle ones.
        order = [order[0], *order[-1:], *order[1:-1]] if len(order) > 1 else order
        found_rows, found = [], []
        for row in order:
            face = next(face for t, face in tracked[row] if t == track)
            if face.box is None:
                continue
            descriptor = self.describer.describe(frames[row], face.box)
            if descriptor is not None:
                found_rows.append(row)
                found.append(descriptor)
            if len(found) == wanted:
                break
        if not found:
            return [], np.zeros((0, 128), np.float32)
        ordered = sorted(zip(found_rows, found), key=lambda pair: pair[0])
        return [r for r, _ in ordered], np.array([d for _, d in ordered])

    def _present_with(self, track: int, rows: list[int], owner) -> set[int]:
        """People other tracks hold in the frames of `rows`."""
        people = set()
        for row in rows:
            people |= {p for t, p in owner[row].items() if t != track}
        for other, state in self.tracks.items():  # running tracks not yet assigned here
            if other != track and any(other in owner[row] for row in rows):
                people.add(state.person)
        return people

    def _take_over(self, person: int, track: int) -> None:
        """`track` is now `person`: a track holding them elsewhere ends (a number, one
        person)."""
        for other, state in list(self.tracks.items()):
            if other != track and state.person == person:
                self.tracker.forget(other)
                del self.tracks[other]

    def _distance(self, person: int, query: np.ndarray, k: int) -> float | None:
        """The distance of described face `query[k]` to its person's kept descriptors (for
        someone new, to the track's other descriptors)."""
        if person in self.book:
            return self.book.distances(query[k][None])[person]
        others = np.delete(query, k, axis=0)
        if not len(others):
            return None
        return float(np.linalg.norm(others - query[k], axis=1).min())

    def _new_person(self) -> int:
        number, self.next_number = self.next_number, self.next_number + 1
        return number
