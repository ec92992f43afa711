"""`anybody evaluate`: learn every person with every method, draw the same prompts with the same seeds,
score every image, and write the report.

    faces/alice.jpg, faces/bob.jpg ─► per method: learn each person (and each pair, for the two-person
    prompts) ─► draw every prompt, images_per_prompt seeds ─► face scorer + CLIP ─► report.json/.md/.html

Everything goes into `out`: the learned identities in a library there (`identities/<method>/<key>/`, never
the user's library), the images (`images/<method>/<key>/<person>/<prompt>/`), the face and CLIP scores
(`cache/`), keyed by method, settings, model and photo, so a rerun reuses whatever is done and an
interrupted one resumes. One progress bar counts learning steps, drawn images and scored images.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from anybody.errors import Interrupted, UsageError
from anybody.evaluation.people import Person, find_people
from anybody.evaluation.prompts import Prompt, load_prompts
from anybody.evaluation.result import EvaluationResult
from anybody.evaluation.scoring import ClipScorer, FaceScorer, load_clip
from anybody.evaluation.settings import EvaluationSettings
from anybody.identity import Identity
from anybody.identity.names import identity_path
from anybody.learning.config import LearnConfig
from anybody.storage import make_folder, write_json

log = logging.getLogger("anybody")


@dataclass
class Job:
    """One learning run of one method: a person alone, or a pair learned together for two-person prompts."""

    spec: str
    people: list[Person]
    config: LearnConfig
    library: Path
    images: Path  # this run's image folder

    @property
    def names(self) -> list[str]:
        return [person.name for person in self.people]

    def learned(self) -> bool:
        return all(identity_path(name, self.library).is_file() for name in self.names)


@dataclass
class Drawing:
    """The images of one prompt for one job."""

    job: Job
    prompt: Prompt
    index: int  # of the prompt in the suite
    folder: Path
    seeds: list[int]

    @property
    def paths(self) -> list[Path]:
        return [self.folder / f"{i:02d}-seed{seed}.png" for i, seed in enumerate(self.seeds)]  # generate's naming

    def drawn(self) -> bool:
        return all(path.is_file() for path in self.paths)


def _key(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _model_key(model: str) -> str:
    """A local model by its full path (a relative one means nothing in another folder), else as given."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def plan(settings: EvaluationSettings, people: list[Person], prompts: list[Prompt]) -> tuple[list[Job], list[Drawing]]:
    """Every learning run and every drawing, with their places in `out`."""
    out = Path(settings.out)
    pairs = list(zip(people[0::2], people[1::2])) if any(p.people == 2 for p in prompts) else []
    jobs, drawings = [], []
    for spec in settings.methods:
        config = settings.learn_config(spec)
        for group in [[person] for person in people] + [list(pair) for pair in pairs]:
            recipe = {"method": spec, "config": asdict(config), "model": _model_key(settings.model),
                      "people": [(person.name, person.digest) for person in group]}
            key = _key(recipe)
            job = Job(spec, group, config, out / "identities" / spec / key,
                      out / "images" / spec / f"{key}-{_key(settings.drawing())[:6]}")
            jobs.append(job)
            seeds = [settings.seed + i for i in range(settings.images_per_prompt)]
            for index, prompt in enumerate(prompts):
                if prompt.people == len(group):
                    folder = job.images / "+".join(job.names) / f"{index:02d}-{_key(prompt.text)[:8]}"
                    drawings.append(Drawing(job, prompt, index, folder, seeds))
    return jobs, drawings


def evaluate(settings: EvaluationSettings, *, progress: bool = True) -> EvaluationResult:
    """Run the whole evaluation (resuming whatever `settings.out` already holds) and write the report."""
    from anybody.evaluation.report import write_report

    settings.check()
    people = find_people(settings.photos)
    prompts = load_prompts(settings.prompts)
    out = make_folder(settings.out)
    jobs, drawings = plan(settings, people, prompts)
    if not any(d.prompt.people == 1 for d in drawings):
        raise UsageError("No prompt has a single {} for one person", "Add prompts such as: a photo of {} smiling")
    scorer = FaceScorer.named(settings.scorer)
    clip, clip_reason = load_clip(settings.clip, _clip_device(settings.device))

    to_learn = sum(job.config.steps for job in jobs if not job.learned())
    to_draw = sum(len(d.seeds) for d in drawings if not d.drawn())
    total_images = sum(len(d.seeds) for d in drawings)
    bar = tqdm(total=to_learn + to_draw + total_images, desc="Evaluating", unit="item", disable=not progress)
    new_images = 0
    try:
        for spec in settings.methods:
            method_jobs = [job for job in jobs if job.spec == spec]
            method_drawings = [d for d in drawings if d.job.spec == spec and not d.drawn()]
            if all(job.learned() for job in method_jobs) and not method_drawings:
                continue
            bar.set_description(f"Evaluating {spec}")
            new_images += _learn_and_draw(settings, method_jobs, method_drawings, bar)
        bar.set_description("Scoring")
        references = {person.name: scorer.reference(person.photo) for person in people}
        rows = _score(settings, drawings, references, scorer, clip, out, bar)
    finally:
        bar.close()
    result = EvaluationResult(settings, people, prompts, rows, {k: v.tolist() for k, v in references.items()},
                              clip_reason, scorer.name, _model_key(settings.model), new_images)
    write_report(result)
    return result


def _clip_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _learn_and_draw(settings: EvaluationSettings, jobs: list[Job], drawings: list[Drawing], bar: tqdm) -> int:
    """One method's runs on a freshly loaded pipeline (methods name their tokens alike: no sharing)."""
    from anybody.generation import generate
    from anybody.learning import learn
    from anybody.learning.names import checkpoint_path
    from anybody.models import load_pipeline

    pipe = load_pipeline(settings.model, device=settings.device, dtype=settings.dtype)
    pipe.set_progress_bar_config(disable=True)
    drawn = 0
    for job in jobs:
        if not job.learned():
            resume = checkpoint_path(job.names, job.library).is_file()
            done = 0

            def advance(step: int, loss: float) -> None:
                nonlocal done
                bar.update(step - done)
                done = step

            try:  # the library is the evaluation's own: a half-saved pair is learned again
                learn([person.photo for person in job.people], job.names, pipe, job.config, library=job.library,
                      resume=resume, replace=True, callback=advance, progress=False)
            except Interrupted as stopped:
                raise Interrupted(f"The evaluation was interrupted while learning {' and '.join(job.names)} with "
                                  f"{job.spec}; what is done is kept", "Run the same evaluate command again: it "
                                  "resumes from there") from stopped
            bar.update(job.config.steps - done)
        identities = [Identity.load(name, job.library) for name in job.names]
        for drawing in (d for d in drawings if d.job is job):
            generate(drawing.prompt.with_names(*job.names), identities, pipe,
                     num_images_per_prompt=len(drawing.seeds), num_inference_steps=settings.drawing_steps,
                     guidance_scale=settings.guidance, seed=drawing.seeds[0], out_dir=drawing.folder,
                     batch_size=settings.batch_size, progress=False)
            drawn += len(drawing.seeds)
            bar.update(len(drawing.seeds))
        switch = getattr(pipe, "anybody_stage_switch", None)
        if switch is not None:  # the next run's identities must not be steered by this one's stages
            switch.remove()
            del pipe.anybody_stage_switch
    return drawn


class _Cache:
    """Scores already computed, one JSON file per scorer, keyed by the image's path inside `out`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, object] = json.loads(path.read_text()) if path.is_file() else {}
        self.changed = False

    def get(self, key: str) -> object:
        return self.values.get(key)

    def put(self, key: str, value: object) -> None:
        self.values[key] = value
        self.changed = True

    def save(self) -> None:
        if self.changed:
            write_json(self.path, self.values)
            self.changed = False


def _score(settings: EvaluationSettings, drawings: list[Drawing], references: dict[str, np.ndarray],
           scorer: FaceScorer, clip: ClipScorer | None, out: Path, bar: tqdm) -> list[dict]:
    from anybody.evaluation.metrics import best_match, id_prompt

    faces_cache = _Cache(out / "cache" / f"faces-{_key(scorer.name)}.json")
    clip_cache = _Cache(out / "cache" / f"clip-{_key(settings.clip)}.json") if clip else None
    rows = []
    try:
        for drawing in drawings:
            images = {path: None for path in drawing.paths}
            relative = [path.relative_to(out).as_posix() for path in drawing.paths]
            descriptors = []
            for path, key in zip(drawing.paths, relative):
                found = faces_cache.get(key)
                if found is None:
                    images[path] = _open(path)
                    found = [face.tolist() for face in scorer.faces(images[path])]
                    faces_cache.put(key, found)
                descriptors.append([np.asarray(face, dtype=np.float32) for face in found])
            clip_scores: list[float | None] = [None] * len(relative)
            if clip is not None and clip_cache is not None:
                missing = [i for i, key in enumerate(relative) if clip_cache.get(key) is None]
                if missing:
                    pictures = [images[drawing.paths[i]] or _open(drawing.paths[i]) for i in missing]
                    for i, value in zip(missing, clip.scores([drawing.prompt.neutral()] * len(missing), pictures)):
                        clip_cache.put(relative[i], value)
                clip_scores = [float(clip_cache.get(key)) for key in relative]  # type: ignore[arg-type]
            for seed, key, faces, clip_score in zip(drawing.seeds, relative, descriptors, clip_scores):
                people = drawing.job.names
                identity = float(np.mean([best_match(references[name], faces) for name in people]))
                rows.append({
                    "method": drawing.job.spec, "people": people, "group": drawing.prompt.group,
                    "prompt": drawing.prompt.text, "prompt_index": drawing.index, "seed": seed, "image": key,
                    "faces": len(faces), "detected": len(faces) >= len(people), "id": identity,
                    "clip": clip_score,
                    "id_prompt": None if clip_score is None else
                    float(id_prompt([identity], [clip_score], settings.clip_threshold)[0]),
                    "descriptor": faces[0].tolist() if faces else None,
                })
                bar.update(1)
    finally:
        faces_cache.save()
        if clip_cache is not None:
            clip_cache.save()
    return rows


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")
