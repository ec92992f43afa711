"""The evaluation's report, three files in `out`: report.json (every number and setting), report.md (the
method × metric table with counts and 95 % intervals) and report.html (per person the reference photo and
the images per method and prompt group, and the ID-against-CLIP-T scatter plot).

The HTML is self-contained: it refers only to image files inside `out` by relative paths, with no script,
font or style from anywhere else, so it opens offline and can be zipped and sent as it is.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from anybody.evaluation.metrics import CONFIDENCE, Estimate, bootstrap_interval, detection_rate, face_diversity
from anybody.evaluation.result import EvaluationResult
from anybody.evaluation.scoring import same_network
from anybody.storage import write_json, write_text, write_with
from anybody.version import __version__

COLUMNS = (  # (key, heading, what it means)
    ("id", "ID", "cosine between the reference photo's face descriptor and the generated face's (0 without a face)"),
    ("detected", "Detect", "share of images where the face (both faces, in two-person prompts) was found"),
    ("clip", "CLIP-T", "CLIP cosine between the image and the prompt with 'a person' for the name"),
    ("id_prompt", "ID(Prompt)", "ID, but 0 where CLIP-T is under the threshold"),
    ("diversity", "Diversity", "mean pairwise descriptor distance between one person's generated faces"),
)
SCATTER = "scatter.png"


def summarise(result: EvaluationResult) -> dict[str, dict]:
    """Per method: each metric's mean and 95 % bootstrap interval over images (diversity: over people),
    the counts, and the ID and CLIP-T means per prompt group."""
    summary = {}
    for method in result.settings.methods:
        rows = [row for row in result.rows if row["method"] == method]
        metrics: dict[str, dict | None] = {}
        for key in ("id", "detected", "clip", "id_prompt"):
            values = [float(row[key]) for row in rows if row[key] is not None]
            estimate = bootstrap_interval(values)
            metrics[key] = estimate.as_dict() if estimate else None
        diversity = _diversity(rows)
        estimate = bootstrap_interval([value for value in diversity.values() if value is not None])
        metrics["diversity"] = estimate.as_dict() if estimate else None
        groups = {}
        for group in dict.fromkeys(row["group"] for row in rows):
            in_group = [row for row in rows if row["group"] == group]
            clips = [row["clip"] for row in in_group if row["clip"] is not None]
            groups[group] = {"images": len(in_group), "id": float(np.mean([row["id"] for row in in_group])),
                             "detected": detection_rate([row["detected"] for row in in_group]),
                             "clip": float(np.mean(clips)) if clips else None}
        summary[method] = {"images": len(rows), "identities": len({name for row in rows for name in row["people"]}),
                           "metrics": metrics, "diversity_per_person": diversity, "groups": groups}
    return summary


def _diversity(rows: list[dict]) -> dict[str, float | None]:
    """Face diversity per person, over the faces of their one-person images."""
    faces: dict[str, list] = {}
    for row in rows:
        if len(row["people"]) == 1:
            faces.setdefault(row["people"][0], [])
            if row["descriptor"] is not None:
                faces[row["people"][0]].append(row["descriptor"])
    return {name: face_diversity(found) for name, found in faces.items()}


def warnings_of(result: EvaluationResult) -> list[str]:
    settings = result.settings
    notes = list(result.warnings)
    if same_network(settings.scorer, settings.face_encoder):
        notes.append(f"The scoring recognizer ({result.scorer}) is the face encoder the methods learned with: "
                     "methods that learn from face features (celeb-basis) are scored by the network they fitted, "
                     "which flatters their ID. Score with another recognizer (--scorer PATH.onnx) for a fair ID.")
    if result.clip_reason:
        notes.append(f"CLIP-T and ID(Prompt) are empty: {result.clip_reason}.")
    if settings.model.startswith("tiny"):
        notes.append(f"The model {settings.model} has random weights: its pictures are noise and these numbers "
                     "only show that the harness runs. Use a real model for numbers that mean something.")
    return notes


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"anybody": __version__, "python": platform.python_version()}
    for package in ("torch", "diffusers", "transformers", "numpy", "dlib-bin", "matplotlib", "jinja2"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_report(result: EvaluationResult) -> dict[str, Path]:
    out = Path(result.settings.out)
    summary = summarise(result)
    notes = warnings_of(result)
    report = {
        "settings": asdict(result.settings),
        "model": result.model,
        "versions": versions(),
        "seeds": {"learning": result.settings.seed,
                  "images": [result.settings.seed + i for i in range(result.settings.images_per_prompt)]},
        "scorer": result.scorer,
        "learning_face_encoder": result.settings.face_encoder,
        "clip": {"model": result.settings.clip, "empty_because": result.clip_reason or None,
                 "threshold": result.settings.clip_threshold},
        "interval": f"{CONFIDENCE:.0%} percentile bootstrap over images (diversity: over people)",
        "people": {person.name: {"photo": str(person.photo), "sha256": person.digest} for person in result.people},
        "prompts": [{"text": p.text, "group": p.group} for p in result.prompts],
        "warnings": notes,
        "summary": summary,
        "images": [{key: value for key, value in row.items() if key != "descriptor"} for row in result.rows],
        "references": result.references,
    }
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    write_json(paths["json"], report)
    write_text(paths["md"], markdown(result, summary, notes))
    scatter = _scatter(result, out / SCATTER)
    write_text(paths["html"], html(result, summary, notes, scatter))
    return paths


def _cell(metric: dict | None, percent: bool = False) -> str:
    if metric is None:
        return "—"
    estimate = Estimate(**metric)
    if percent:
        return f"{estimate.mean:.1%} [{estimate.low:.1%}, {estimate.high:.1%}]"
    return f"{estimate.mean:.4f} [{estimate.low:.4f}, {estimate.high:.4f}]"


def counted(number: int, noun: str) -> str:
    """"1 DDIM step", "50 DDIM steps"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def reuse_note(result: EvaluationResult) -> str:
    """How many of the images this run drew, and how many it found drawn by an earlier run (only if any)."""
    total, drawn = len(result.rows), result.new_images
    if drawn == total:
        return f"{counted(drawn, 'image')} {'was' if drawn == 1 else 'were'} drawn in this run."
    if drawn == 0:
        return f"{'The image was' if total == 1 else f'All {total} images were'} drawn by an earlier run."
    reused = total - drawn
    return (f"{counted(drawn, 'image')} {'was' if drawn == 1 else 'were'} drawn in this run; the other {reused} "
            f"{'was' if reused == 1 else 'were'} drawn by an earlier run and reused.")


def markdown(result: EvaluationResult, summary: dict, notes: list[str]) -> str:
    settings = result.settings
    lines = [
        "# Evaluation", "",
        f"Model `{result.model}`; {len(result.people)} people, {len(result.prompts)} prompts "
        f"(`{settings.prompts}`), {settings.images_per_prompt} image{'s' if settings.images_per_prompt != 1 else ''} "
        f"each (seeds {settings.seed} to "
        f"{settings.seed + settings.images_per_prompt - 1}), {counted(settings.drawing_steps, 'DDIM step')}, guidance "
        f"{settings.guidance}. Identity scored by `{result.scorer}`; the methods learned with "
        f"`{settings.face_encoder}`. CLIP-T: `{settings.clip or 'none'}`, ID(Prompt) threshold "
        f"{settings.clip_threshold}. {reuse_note(result)}", "",
        f"Each cell: the mean and its {CONFIDENCE:.0%} interval (percentile bootstrap over images; diversity over "
        "people).", "",
    ]
    for note in notes:
        lines += [f"> **Warning:** {note}", ""]
    lines += ["| method | " + " | ".join(heading for _, heading, _ in COLUMNS) + " | images | identities |",
              "|---" * (len(COLUMNS) + 3) + "|"]
    for method, entry in summary.items():
        cells = [_cell(entry["metrics"][key], percent=key == "detected") for key, _, _ in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {entry['images']} | {entry['identities']} |")
    lines += ["", "Per prompt group (mean ID / detection rate / CLIP-T):", ""]
    groups = list(dict.fromkeys(group for entry in summary.values() for group in entry["groups"]))
    lines += ["| method | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for method, entry in summary.items():
        cells = []
        for group in groups:
            found = entry["groups"].get(group)
            clip = "—" if not found or found["clip"] is None else f"{found['clip']:.3f}"
            cells.append("—" if not found else f"{found['id']:.3f} / {found['detected']:.0%} / {clip}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Columns:", ""] + [f"- **{heading}**: {meaning}." for _, heading, meaning in COLUMNS]
    return "\n".join(lines) + "\n"


def _scatter(result: EvaluationResult, path: Path) -> str | None:
    """ID against CLIP-T, one colour per method (each image, and the method's mean); None without CLIP-T."""
    if not any(row["clip"] is not None for row in result.rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), dpi=110)
    axes = figure.subplots()
    for method in result.settings.methods:
        rows = [row for row in result.rows if row["method"] == method and row["clip"] is not None]
        clips, ids = [row["clip"] for row in rows], [row["id"] for row in rows]
        points = axes.scatter(clips, ids, s=10, alpha=0.35)
        axes.scatter([np.mean(clips)], [np.mean(ids)], s=120, marker="*", edgecolors="black",
                     color=points.get_facecolor()[0][:3], label=f"{method} (mean)")
    axes.axvline(result.settings.clip_threshold, color="grey", linestyle=":", linewidth=1,
                 label=f"ID(Prompt) threshold {result.settings.clip_threshold}")
    axes.set_xlabel("CLIP-T (text–image cosine)")
    axes.set_ylabel("ID similarity")
    axes.set_title("Identity against prompt fidelity, per image")
    axes.legend(fontsize=8)
    figure.tight_layout()
    write_with(path, lambda stream: figure.savefig(stream, format="png"))
    return path.name


def _reference_copies(result: EvaluationResult, out: Path) -> dict[str, str]:
    """Each reference photo copied into `out` (the report must not point outside it)."""
    folder = out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    copies = {}
    for person in result.people:
        target = folder / f"{person.name}{person.photo.suffix.lower()}"
        if not target.is_file() or target.stat().st_size != person.photo.stat().st_size:
            write_with(target, lambda stream, source=person.photo: stream.write(source.read_bytes()))
        copies[person.name] = target.relative_to(out).as_posix()
    return copies


def html(result: EvaluationResult, summary: dict, notes: list[str], scatter: str | None) -> str:
    out = Path(result.settings.out)
    references = _reference_copies(result, out)
    people = []
    for person in result.people:
        methods = []
        for method in result.settings.methods:
            rows = [row for row in result.rows if row["method"] == method and person.name in row["people"]]
            groups = {}
            for row in rows:
                groups.setdefault(row["group"], []).append(row)
            methods.append({"name": method, "groups": groups})
        people.append({"name": person.name, "photo": references[person.name], "methods": methods})
    environment = Environment(loader=PackageLoader("anybody.evaluation", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    table = [{"method": method, "cells": [_cell(entry["metrics"][key], percent=key == "detected")
                                          for key, _, _ in COLUMNS],
              "images": entry["images"], "identities": entry["identities"]} for method, entry in summary.items()]
    return environment.get_template("report.html.j2").render(
        result=result, settings=result.settings, columns=COLUMNS, table=table, notes=notes, scatter=scatter,
        people=people, confidence=f"{CONFIDENCE:.0%}", versions=versions(),
        steps=counted(result.settings.drawing_steps, "DDIM step"), reuse=reuse_note(result))
