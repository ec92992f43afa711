"""Which photos make which identity, and whether several photos of one person show one face.

An identity learns from a list of photos. `learn(photos, names)` pairs photos and names one to one (the
joint learning of several people); `same_person=True` makes every photo one identity's; and from Python an
item of `photos` that is itself a list is one identity's photos (`[["a1.jpg", "a2.jpg"], "b.jpg"]`).
Importing this module loads no model library (the CLI checks arguments with it first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from anybody.errors import UsageError

log = logging.getLogger("anybody")
Photo = object  # a path, or an image a caller holds in memory (anybody.face.PhotoSource)


def group_photos(photos: Sequence[Photo], same_person: bool = False) -> list[list[Photo]]:
    """Each identity's photos: all of them for one person (`same_person`), else one identity per item,
    where an item that is a list or tuple holds one identity's several photos."""
    groups = [list(item) if isinstance(item, (list, tuple)) else [item] for item in photos]
    if same_person:
        groups = [[photo for group in groups for photo in group]]
    for group in groups:
        if not group:
            raise UsageError("An identity was given an empty list of photos", "Give each identity at least one photo")
        paths = [os.path.abspath(photo) for photo in group if isinstance(photo, (str, os.PathLike))]
        twice = next((path for index, path in enumerate(paths) if path in paths[:index]), None)
        if twice is not None:
            raise UsageError(f"The photo {photo_label(twice)} is given twice for one identity",
                             "Give each photo once (a second copy adds nothing but weight)")
    return groups


def photo_label(photo: Photo) -> str:
    """What files, messages and checkpoints call a photo: its file name, or "in-memory image"."""
    return os.path.basename(os.fspath(photo)) if isinstance(photo, (str, os.PathLike)) else "in-memory image"


def unlike_faces(descriptors: Sequence[np.ndarray], same_person_distance: float) -> list[tuple[int, float]]:
    """(index, distance) of each face whose mean distance to the others is over the recognizer's
    same-person threshold: it may be someone else. The mean over the others, not the distance to one, so
    that among three photos of one person and one of another only the other is named (two photos that
    disagree are both named: nothing says which is the odd one)."""
    if len(descriptors) < 2:
        return []
    features = np.asarray(descriptors, dtype=np.float64)
    distances = np.linalg.norm(features[:, None] - features[None], axis=-1)
    to_others = distances.sum(axis=1) / (len(features) - 1)
    return [(int(index), float(to_others[index])) for index in np.flatnonzero(to_others > same_person_distance)]


def warn_unlike_faces(name: str, photos: Sequence[Photo], descriptors: Sequence[np.ndarray],
                      same_person_distance: float) -> None:
    """A WARNING naming each photo of `name` whose face is far from the other photos' faces."""
    for index, distance in unlike_faces(descriptors, same_person_distance):
        log.warning("The photo %s may show someone else: its face is %.2f from the other photos of %s on average, "
                    "over the face recognizer's same-person distance of %.2f. Check that every photo shows %s; "
                    "learning goes on with all of them", photo_label(photos[index]), distance, name,
                    same_person_distance, name)
