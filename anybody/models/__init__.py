"""Base models: the built-in tiny ones, and loading any Stable Diffusion the user names."""

from anybody.models.loading import describe_model, load_pipeline, model_family, text_encoders

__all__ = ["describe_model", "load_pipeline", "model_family", "text_encoders"]
