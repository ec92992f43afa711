"""Generation: drawing learned people with a diffusers pipeline."""

from anybody.generation.generate import GenerationResult, apply, attention_map, check_fits, generate

__all__ = ["GenerationResult", "apply", "attention_map", "check_fits", "generate"]
