"""The settings of an evaluation and of the recovery task, as plain data (no torch: the command line
builds its options and help from these defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from anybody.errors import require_at_least, require_finite, require_steps
from anybody.evaluation.prompts import SUITE
from anybody.evaluation.variants import DEFAULT_METHODS, variant_config
from anybody.generation import defaults
from anybody.learning.config import LearnConfig

CLIP_THRESHOLD = 0.23  # SeFi-IDE's ID(Prompt): an image whose CLIP-T is under it scores 0
DEFAULT_OUT = "anybody-output/evaluation"
SCORER = "dlib"


@dataclass
class EvaluationSettings:
    """Every setting of an evaluation (saved whole in report.json)."""

    photos: str  # a folder with one photo per person; the file name is the identity name
    model: str
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    prompts: str = SUITE
    images_per_prompt: int = defaults.NUM_IMAGES
    seed: int = 0  # learning seed, and image i of every prompt is drawn with seed + i
    steps: int | None = None  # learning steps (default: each method's own)
    views: int | None = None
    resolution: int | None = None
    face_encoder: str = LearnConfig.face_encoder  # what the methods learn with
    drawing_steps: int = defaults.STEPS
    guidance: float = defaults.GUIDANCE
    batch_size: int = defaults.BATCH_SIZE
    scorer: str = SCORER  # what identity is scored with
    clip: str | None = None
    clip_threshold: float = CLIP_THRESHOLD
    out: str = DEFAULT_OUT
    device: str | None = None
    dtype: str | None = None

    def check(self) -> None:
        require_at_least(self.images_per_prompt, 1, "number of images per prompt", "--images-per-prompt", 4)
        require_steps(self.drawing_steps, "--drawing-steps", defaults.STEPS, kind="drawing")
        require_finite(self.guidance, "guidance scale", "--guidance", defaults.GUIDANCE)
        for spec in self.methods:
            self.learn_config(spec)

    def learn_config(self, spec: str) -> LearnConfig:
        """The method's own defaults with the settings every compared method shares."""
        return variant_config(spec, steps=self.steps, views=self.views, resolution=self.resolution,
                              seed=self.seed, face_encoder=self.face_encoder)

    def drawing(self) -> dict[str, object]:
        return {"steps": self.drawing_steps, "guidance": self.guidance, "seed": self.seed,
                "scheduler": defaults.SCHEDULER}


@dataclass
class RecoverySettings:
    """The synthetic recovery task (recovery.py)."""

    photos: str  # a folder with one photo per person (each gets its own planted identity)
    model: str = "tiny"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    steps: int = 200
    views: int = 8
    learning_rate: float | None = None  # default: each method's own
    seed: int = 0
    out: str = "anybody-output/recovery"
    device: str | None = None
    dtype: str | None = None

    def check(self) -> None:
        for spec in self.methods:
            variant_config(spec, steps=self.steps, views=self.views, learning_rate=self.learning_rate)
