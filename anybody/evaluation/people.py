"""The people an evaluation learns: one per photo of a folder, named after the file. Checked without any model
library, so that a wrong folder is refused at once."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from anybody.errors import UsageError
from anybody.face import load_photo
from anybody.face.photo import photo_files
from anybody.identity.names import validate_name


@dataclass
class Person:
    name: str
    photo: Path
    digest: str  # of the photo's bytes: a changed photo is learned again


def find_people(folder: str | os.PathLike[str]) -> list[Person]:
    """One person per photo in `folder`, named by the file name (checked as an identity name)."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder", "Give a folder holding one photo per person, named after "
                         "the person (alice.jpg, bob.png)")
    photos = photo_files(root)
    if not photos:
        raise UsageError(f"The folder {root} holds no photo", "Put one photo per person there (alice.jpg, bob.png)")
    people, seen = [], {}
    for photo in photos:
        name = validate_name(photo.stem)
        if name in seen:
            raise UsageError(f"Two photos name the same person: {seen[name].name} and {photo.name}",
                             "Keep one photo per person")
        seen[name] = photo
        load_photo(photo)  # a bad photo fails now, before any model is loaded
        people.append(Person(name, photo, hashlib.sha256(photo.read_bytes()).hexdigest()))
    return people
