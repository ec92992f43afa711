"""Every setting of a learning run, as plain data: the one place each default lives.

The command line builds its `learn` options and their help from these fields, and each method's paper
defaults come from its folder under `anybody/methods/`, so a default changes in one place. Importing this
module loads no model library (the CLI checks arguments with it before anything heavy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from anybody.basis.options import BasisOptions
from anybody.errors import UsageError, require_at_least, require_finite, require_steps
from anybody.methods import DEFAULT_METHOD, get_method
from anybody.methods.sefi import ATTENTION_LEVEL


@dataclass
class LearnConfig:
    """Every setting of a learning run (saved in each identity file).

    `LearnConfig.for_method("sefi")` gives SeFi-IDE's paper defaults (Adam, lr 0.005, 1000 steps, λ 0.003).
    """

    method: str = DEFAULT_METHOD
    steps: int = 800
    batch_size: int = 2
    learning_rate: float = 1e-2  # Celeb Basis: the paper's 5e-3 scaled by its batch of 2
    seed: int = 0
    mapper_depth: int = 1  # Celeb Basis: MLP layers (the paper's: 1)
    stages: int = 5  # SeFi-IDE: denoising stages with their own key and value tokens
    tokens: int = 2  # Textual Inversion: token vectors per identity
    attention_loss: float = 0.0  # λ of the face-wise attention loss (SeFi-IDE: 0.003)
    attention_tokens: Literal["all", "identity", "prompt"] = "all"
    attention_level: int = ATTENTION_LEVEL  # cross-attention level of the loss: 1 = 32x32 for SD 1.x at 512 px
    views: int = 32  # augmented views per photo, computed once before the loop
    resolution: int | None = None  # default: the model's native size
    checkpoint_every: int = 100
    check_every: int = 10  # steps between reads of the loss (each read waits for the device)
    compile: bool = False  # torch.compile the frozen UNet
    channels_last: bool = False  # the UNet in channels-last memory format
    coefficient_average: Literal["views", "ema"] = "views"
    ema_momentum: float = 0.99
    gradient_checkpointing: bool = False
    class_word: str = "person"
    detector: Literal["hog", "cnn"] = "hog"  # dlib's HOG (fast) or CNN face detector
    face_encoder: str = "dlib"
    face_index: int | None = None
    basis: BasisOptions = field(default_factory=BasisOptions)

    @classmethod
    def for_method(cls, method: str, **overrides: object) -> LearnConfig:
        """The method's paper defaults, then `overrides` (a field given as None keeps its default)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(cls(method=method, **get_method(method).defaults), **given)  # type: ignore[arg-type]

    def check(self) -> None:
        get_method(self.method)
        defaults = LearnConfig.for_method(self.method)  # each example: the method's own default
        require_steps(self.steps, "--steps", defaults.steps)
        for name, what, flag in (("batch_size", "batch size", "--batch-size"),
                                 ("views", "number of views", "--views"),
                                 ("checkpoint_every", "number of steps between checkpoints", "--checkpoint-every"),
                                 ("check_every", "number of steps between loss checks", "--check-every"),
                                 ("mapper_depth", "mapper depth", "--mapper-depth"),
                                 ("stages", "number of stages", "--stages"),
                                 ("tokens", "number of tokens", "--tokens")):
            require_at_least(getattr(self, name), 1, what, flag, getattr(defaults, name))
        require_finite(self.learning_rate, "learning rate", "--lr", 0.01, positive=True)
        require_finite(self.attention_loss, "attention-loss weight", "--attention-loss", 0.003)
        if self.resolution is not None and (self.resolution < 64 or self.resolution % 8):
            raise UsageError(f"The resolution must be a multiple of 8, at least 64 (got {self.resolution})",
                             "Leave it out to use the model's own size")

    def recipe(self) -> dict:
        """The settings a resumed run must share with the interrupted one (all but how long and how fast it runs)."""
        recipe = asdict(self)
        for speed_only in ("steps", "checkpoint_every", "check_every", "compile", "channels_last"):
            recipe.pop(speed_only)
        return recipe
