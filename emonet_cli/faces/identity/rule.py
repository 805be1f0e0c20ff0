"""The decision: which person a track's faces are, from their descriptors. Numpy only.

dlib's descriptors of one person are near each other, but how near depends on the people: on
the suite's real faces the same woman across expressions is 0.38-0.46 from herself, the same
man across clips 0.08-0.34, while different people of the expression photos are 0.52-0.72 apart
and two of multi_face.jpg 0.51. No absolute threshold separates everyone, so the rule is
relative, and it looks at several frames:

- A person's distance is the mean, over the query's descriptors (up to START_LOOKS frames of a
  track), of the distance to the nearest of the descriptors kept for that person (up to
  KEPT_PER_PERSON, from different frames: expressions and poses they were seen in).
- People seen in the same frame as the track are no candidates: one face is one person.
- The nearest candidate is the person when nearer than MATCH_DISTANCE, nearer by MARGIN
  than the second nearest, and nearer by MARGIN than the people known to be someone else
  (seen in the same frame as them, or of the gallery) are to them: where the descriptors
  cannot tell apart people who are different (drawn faces are 0.08-0.15 apart), they decide
  nothing. Nobody nearer than MATCH_DISTANCE makes someone new, unless the nearest is nearer
  than LOOSE_MATCH and by twice the margin than the second (one gallery photo of a woman
  whose own frames are 0.46-0.53 from it, 0.78 from the others'). An unsure decision leaves a
  running track its person, and gives a new track a new number: a person spread over two
  numbers is the lesser error than two people under one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MATCH_DISTANCE = 0.5
LOOSE_MATCH = 0.6  # nearer than this, and 2 * MARGIN nearer than the second: still a match
MARGIN = 0.1
KEPT_PER_PERSON = 12
NOVEL = 0.12  # a descriptor is kept for its person when this far from every one kept


@dataclass(frozen=True)
class Decision:
    """Who a query is: a known `person` (None: someone new), its `distance` to them (to the
    nearest person when new; inf with nobody known) and whether the rule is `sure`."""

    person: int | None
    distance: float
    sure: bool


class PeopleBook:
    """The descriptors kept for each known person (by number)."""

    def __init__(self):
        self.kept: dict[int, np.ndarray] = {}
        self.apart: dict[int, set[int]] = {}  # people known to be different people

    def note_apart(self, people: set[int]) -> None:
        """`people` are different people (seen together)."""
        for person in people:
            self.apart.setdefault(person, set()).update(people - {person})

    def separation(self, person: int) -> float:
        """How near the people known to be someone else come to `person` (inf: none)."""
        kept = self.kept.get(person)
        others = [self.kept[q] for q in self.apart.get(person, ()) if q in self.kept]
        if kept is None or not others:
            return float("inf")
        return min(self.distances_between(kept, other) for other in others)

    @staticmethod
    def distances_between(query: np.ndarray, kept: np.ndarray) -> float:
        return float(np.linalg.norm(query[:, None, :] - kept[None], axis=2).min(axis=1).mean())

    def __contains__(self, person: int) -> bool:
        return person in self.kept

    def distances(self, query: np.ndarray) -> dict[int, float]:
        """Each known person's distance to `query` (k, 128): see the module docstring."""
        query = np.atleast_2d(query)
        return {
            person: float(np.linalg.norm(query[:, None, :] - kept[None], axis=2).min(axis=1).mean())
            for person, kept in self.kept.items()
        }

    def decide(self, query: np.ndarray, excluded: set[int] = frozenset()) -> Decision:
        """Which person `query` (k, 128) is, among those known and not `excluded`."""
        ranked = sorted(
            (distance, person)
            for person, distance in self.distances(query).items()
            if person not in excluded
        )
        if not ranked:
            return Decision(None, float("inf"), True)
        nearest, person = ranked[0]
        second = ranked[1][0] if len(ranked) > 1 else float("inf")
        apart = nearest + MARGIN <= self.separation(person)
        if nearest >= MATCH_DISTANCE:
            # Beyond it only by a wide margin over someone else known (a person seen in
            # another pose or light than their one gallery photo).
            wide = nearest < LOOSE_MATCH and second - nearest >= 2 * MARGIN and second < np.inf
            return (
                Decision(person, nearest, True) if wide and apart else Decision(None, nearest, True)
            )
        return Decision(person, nearest, second - nearest >= MARGIN and apart)

    def learn(self, person: int, query: np.ndarray) -> None:
        """Keep `query`'s descriptors for `person`, those unlike the ones kept, up to
        KEPT_PER_PERSON."""
        for descriptor in np.atleast_2d(query).astype(np.float32):
            kept = self.kept.get(person)
            if kept is None:
                self.kept[person] = descriptor[None]
            elif len(kept) < KEPT_PER_PERSON and (
                np.linalg.norm(kept - descriptor, axis=1).min() > NOVEL
            ):
                self.kept[person] = np.vstack([kept, descriptor])
