"""Base models: the built-in tiny ones, loading any Stable Diffusion the user names, which models this machine
has (`list_models`), where a named one comes from (`locate_model`, no model library needed) and fetching one
from the Hub (`download_pipeline`)."""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.models.catalog import list_models, locate_model
    from anybody.models.download import download_pipeline
    from anybody.models.loading import describe_model, load_pipeline, model_family, text_encoders

__all__ = ["describe_model", "download_pipeline", "list_models", "load_pipeline", "locate_model", "model_family",
           "text_encoders"]
__getattr__ = lazy_exports(__name__, {**dict.fromkeys(["describe_model", "load_pipeline", "model_family",
                                                       "text_encoders"], "loading"),
                                      "list_models": "catalog", "locate_model": "catalog",
                                      "download_pipeline": "download"})
