"""Base models: the built-in tiny ones, and loading any Stable Diffusion the user names."""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.models.loading import describe_model, load_pipeline, model_family, text_encoders

__all__ = ["describe_model", "load_pipeline", "model_family", "text_encoders"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "loading"))
