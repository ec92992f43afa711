"""The methods an evaluation compares: a method name, optionally with `+variant`s (plain data).

`celeb-basis+attention` is Celeb Basis learned with SeFi-IDE's face-wise attention loss at SeFi-IDE's
weight: the ablation that separates what the loss does from what SeFi-IDE's per-stage tokens do.
"""

from __future__ import annotations

from anybody.errors import UsageError
from anybody.learning.config import LearnConfig
from anybody.methods import METHODS, get_method
from anybody.methods.sefi import ATTENTION_LOSS_WEIGHT

VARIANTS: dict[str, dict[str, object]] = {
    "attention": {"attention_loss": ATTENTION_LOSS_WEIGHT},  # SeFi-IDE's face-wise attention loss, λ 0.003
}
DEFAULT_METHODS = ("celeb-basis", "celeb-basis+attention", "sefi", "textual-inversion")


def parse_methods(text: str) -> list[str]:
    """A comma-separated list of method specs, each checked; duplicates refused."""
    specs = [spec.strip() for spec in text.split(",") if spec.strip()]
    if not specs:
        raise UsageError("No method was given", f"Pass for example --methods {','.join(DEFAULT_METHODS)}")
    if len(set(specs)) != len(specs):
        raise UsageError(f"A method is named twice in {text!r}", "Name each method once")
    for spec in specs:
        split_spec(spec)
    return specs


def split_spec(spec: str) -> tuple[str, list[str]]:
    """"celeb-basis+attention" -> ("celeb-basis", ["attention"]), with one-line errors for unknown parts."""
    method, *variants = spec.split("+")
    if method not in METHODS:
        get_method(method)  # the UsageError listing the methods
    unknown = [variant for variant in variants if variant not in VARIANTS]
    if unknown:
        raise UsageError(f"Unknown method variant {unknown[0]!r} in {spec!r}",
                         f"Use a method ({', '.join(METHODS)}), optionally with +{' or +'.join(VARIANTS)}")
    return method, variants


def variant_config(spec: str, **overrides: object) -> LearnConfig:
    """The learning config of a method spec: the method's paper defaults, its variants, then `overrides`
    (None keeps the default). Every method gets the same overrides, so the comparison stays fair."""
    method, variants = split_spec(spec)
    settings: dict[str, object] = {}
    for variant in variants:
        settings.update(VARIANTS[variant])
    config = LearnConfig.for_method(method, **settings, **{k: v for k, v in overrides.items() if v is not None})
    config.check()
    return config
