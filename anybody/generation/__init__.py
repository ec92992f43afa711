"""Generation: drawing learned people with a diffusers pipeline."""

from anybody.generation.generate import GenerationResult, apply, check_fits, generate

__all__ = ["GenerationResult", "apply", "check_fits", "generate"]
