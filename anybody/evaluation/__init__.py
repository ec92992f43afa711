"""Evaluation: every method on the same photos, prompts and seeds, scored and reported (`anybody evaluate`).

    from anybody.evaluation import EvaluationSettings, evaluate
    evaluate(EvaluationSettings(photos="faces/", model="CompVis/stable-diffusion-v1-4",
                                clip="openai/clip-vit-large-patch14"))

Modules: `metrics` (the numbers, numpy only), `prompts` (the shipped suite), `variants` (method specs such
as celeb-basis+attention), `scoring` (face recognizer and CLIP), `people` (one per photo), `result` (what was scored),
`harness` (learn, draw, score, resume), `report` (report.json, report.md, report.html), `recovery` (the
synthetic recovery task).
"""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.evaluation.harness import evaluate
    from anybody.evaluation.recovery import recover
    from anybody.evaluation.result import EvaluationResult
    from anybody.evaluation.settings import EvaluationSettings, RecoverySettings

__all__ = ["EvaluationResult", "EvaluationSettings", "RecoverySettings", "evaluate", "recover"]
__getattr__ = lazy_exports(__name__, {"EvaluationResult": "result", "EvaluationSettings": "settings",
                                      "evaluate": "harness", "RecoverySettings": "settings", "recover": "recovery"})
