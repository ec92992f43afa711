"""`anybody basis filter`: keep the celebrity names the model itself knows as one consistent face.

Celeb Basis's names were filtered by hand "by how well Stable Diffusion draws each name" (docs/method.md §1);
the list and the filter were never released. This is the filter, automated: for each name, draw a few
images of "a photo of NAME"; keep the name when faces are found in most of them and the faces agree with
each other (their mean pairwise descriptor distance under the recognizer's same-person threshold). A name
the model draws as a random face, or as no face, adds noise to the basis instead of a direction.

The result is a names file (`basis --names`, `learn --names` read it): the kept names, one a line, each
after a `#` comment with its scores; rejected names appear as comments only. Scores are kept beside it
(`NAMES.scores.json`) and reused by a rerun with the same settings, so a long run resumes, and slices
(`limit`, `offset`) can run one after another, or on several machines, into the same file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anybody.errors import UsageError, require_at_least, require_steps
from anybody.generation import defaults

if TYPE_CHECKING:
    from PIL import Image

    from anybody.evaluation.scoring import FaceScorer

PROMPT = "a photo of {}"
IMAGES = 4
MIN_DETECTED = 0.75  # "most of them": 3 of 4
OUT = "names.txt"


def names_file(path: str | os.PathLike[str]) -> str:
    """A names file given on the command line, checked to exist and made absolute (it is part of the basis
    recipe, so the same file must read the same from any folder)."""
    found = Path(path).expanduser()
    if not found.is_file():
        raise UsageError(f"The names file {found} does not exist",
                         "Give a text file with one name a line (anybody basis filter writes one)")
    return str(found.resolve())


@dataclass
class FilterSettings:
    model: str
    names: str | None = None  # a names file; None: the shipped list
    images: int = IMAGES  # drawn per name
    steps: int = defaults.STEPS
    guidance: float = defaults.GUIDANCE
    seed: int = defaults.SEED
    min_detected: float = MIN_DETECTED
    same_person: float | None = None  # descriptor distance; default: the recognizer's own threshold
    scorer: str = "dlib"
    offset: int = 0
    limit: int | None = None
    out: str = OUT
    device: str | None = None
    dtype: str | None = None

    def check(self) -> None:
        require_at_least(self.images, 2, "number of images per name", "--images", IMAGES)
        require_steps(self.steps, "--steps", defaults.STEPS)
        require_at_least(self.offset, 0, "offset", "--offset", 0)
        if self.limit is not None:
            require_at_least(self.limit, 1, "limit", "--limit", 100)
        if not 0 < self.min_detected <= 1:
            raise UsageError(f"The share of images with a face must be in (0, 1] (got {self.min_detected})",
                             f"Pass --min-detected {MIN_DETECTED}, for example")

    def recipe(self) -> dict[str, object]:
        """What a name's scores depend on: a cached score is reused only under the same recipe."""
        return {"model": self.model, "images": self.images, "steps": self.steps, "guidance": self.guidance,
                "seed": self.seed, "scorer": self.scorer, "prompt": PROMPT}


@dataclass
class NameScore:
    name: str
    detected: int  # images with a face
    images: int
    distance: float | None  # mean pairwise distance between the faces found (None with fewer than two)

    def kept(self, min_detected: float, same_person: float) -> bool:
        return (self.detected >= min_detected * self.images and self.distance is not None
                and self.distance < same_person)

    def describe(self) -> str:
        spread = "—" if self.distance is None else f"{self.distance:.3f}"
        return f"faces in {self.detected}/{self.images} images, mean face distance {spread}"


def score_images(name: str, images: list[Image.Image], scorer: FaceScorer) -> NameScore:
    """How often a face was found in the name's images, and how alike those faces (the largest of each) are."""
    from anybody.evaluation.metrics import face_diversity

    faces = [found[0] for found in (scorer.faces(image) for image in images) if found]
    return NameScore(name, len(faces), len(images), face_diversity(faces))


def score_name(name: str, pipe: object, scorer: FaceScorer, settings: FilterSettings) -> NameScore:
    """Draw `settings.images` pictures of "a photo of NAME" with the plain model and score them."""
    from anybody.generation import generate

    result = generate(PROMPT.format(name), (), pipe, num_images_per_prompt=settings.images,
                      num_inference_steps=settings.steps, guidance_scale=settings.guidance, seed=settings.seed,
                      progress=False)
    return score_images(name, result.images, scorer)


def filter_names(settings: FilterSettings, *, progress: bool = True) -> list[NameScore]:
    """Score the slice of names not yet scored, then write the names file with every score so far."""
    from tqdm.auto import tqdm

    from anybody.basis.builder import load_names
    from anybody.evaluation.scoring import FaceScorer
    from anybody.models import load_pipeline

    settings.check()
    names = list(dict.fromkeys(load_names(settings.names)))
    end = len(names) if settings.limit is None else settings.offset + settings.limit
    chosen = names[settings.offset : end]
    if not chosen:
        raise UsageError(f"The offset {settings.offset} is past the end of the list ({len(names)} names)",
                         f"Pass an --offset under {len(names)}")
    scores_path = Path(f"{settings.out}.scores.json")
    key = hashlib.sha256(json.dumps(settings.recipe(), sort_keys=True).encode()).hexdigest()[:16]
    stored = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    scores: dict[str, dict] = stored.get("scores", {}) if stored.get("recipe_key") == key else {}
    scorer = FaceScorer.named(settings.scorer)
    same_person = settings.same_person or scorer.same_person_distance
    missing = [name for name in chosen if name not in scores]
    pipe = None
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(missing), desc="Filtering names", unit="name",
               disable=not progress)
    try:
        for name in missing:
            if pipe is None:
                pipe = load_pipeline(settings.model, device=settings.device, dtype=settings.dtype)
                pipe.set_progress_bar_config(disable=True)
            scores[name] = asdict(score_name(name, pipe, scorer, settings))
            _write(settings, names, scores, key, same_person, scores_path)  # after every name: a kill loses one
            bar.update(1)
    finally:
        bar.close()
    _write(settings, names, scores, key, same_person, scores_path)  # thresholds may differ from the last run
    return [NameScore(**scores[name]) for name in chosen]


def _write(settings: FilterSettings, names: list[str], scores: dict[str, dict], key: str, same_person: float,
           scores_path: Path) -> None:
    _write_changed(scores_path, json.dumps({"recipe_key": key, "recipe": settings.recipe(), "scores": scores},
                                           indent=2, sort_keys=True) + "\n")
    scored = [NameScore(**scores[name]) for name in names if name in scores]
    kept = [score for score in scored if score.kept(settings.min_detected, same_person)]
    lines = [f"# Celebrity names kept by `anybody basis filter` on {settings.model}: {len(kept)} of {len(scored)} "
             f"scored ({len(names)} in the list).",
             f'# Each name: {settings.images} images of "{PROMPT.format("NAME")}" (seed {settings.seed}, '
             f"{settings.steps} steps); kept when faces are found in at least {settings.min_detected:.0%} of them "
             f"and their mean descriptor distance ({settings.scorer}) is under {same_person}.", ""]
    for score in scored:
        if score.kept(settings.min_detected, same_person):
            lines += [f"# {score.describe()}", score.name]
        else:
            lines.append(f"# rejected: {score.name}: {score.describe()}")
    _write_changed(Path(settings.out), "\n".join(lines) + "\n")


def _write_changed(path: Path, text: str) -> None:
    """Write (atomically) only what differs from the file on disk: a rerun with nothing new touches nothing."""
    from anybody.storage import write_text

    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
