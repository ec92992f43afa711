"""Generation: drawing learned people with a diffusers pipeline."""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.generation.draw import GenerationResult, apply, attention_map, check_fits, generate

__all__ = ["GenerationResult", "apply", "attention_map", "check_fits", "generate"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "draw"))
