"""What an evaluation found: its people, prompts and scored rows. The harness fills it in and the report
reads it, so it lives below both."""

from __future__ import annotations

from dataclasses import dataclass, field

from anybody.evaluation.people import Person
from anybody.evaluation.prompts import Prompt
from anybody.evaluation.settings import EvaluationSettings


@dataclass
class EvaluationResult:
    settings: EvaluationSettings
    people: list[Person]
    prompts: list[Prompt]
    rows: list[dict]  # one per image
    references: dict[str, list[float]]  # each person's reference descriptor
    clip_reason: str  # why CLIP-T is empty ("" when it is not)
    scorer: str  # the scoring recognizer's name
    model: str
    new_images: int = 0
    warnings: list[str] = field(default_factory=list)
