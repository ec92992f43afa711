"""The dlib model files: where they are, and each one loaded once per process.

The files come from the `face-recognition-models` package. Its `__init__` imports `pkg_resources`, which
is deprecated, slow and absent from recent setuptools, so the package is located with
`importlib.util.find_spec` (which does not run `__init__`) and the files are read by path.

Loading a model takes 0.1 to 1 s; detection runs many times per learning session, so every loader is
cached. The models are read-only after loading and are shared by all callers.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from anybody.errors import ModelError

DETECTOR_CNN = "mmod_human_face_detector.dat"
LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
RECOGNIZER = "dlib_face_recognition_resnet_model_v1.dat"

_INSTALL = "Install them with: pip install dlib-bin face-recognition-models"


def dlib_module() -> Any:
    """The `dlib` module, or a one-line error with the command that installs it."""
    try:
        import dlib
    except ImportError as error:
        raise ModelError("dlib, which finds and recognises faces, is not installed", _INSTALL) from error
    return dlib


@cache
def model_file(name: str) -> Path:
    """The path of one of the `face-recognition-models` files, without importing that package."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelError("The dlib face models (face-recognition-models) are not installed", _INSTALL)
    path = Path(locations[0]) / "models" / name
    if not path.is_file():
        raise ModelError(f"The dlib face model {name} is missing from {path.parent}",
                         "Reinstall them with: pip install --force-reinstall face-recognition-models")
    return path


@cache
def hog_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (built into dlib, no file)."""
    return dlib_module().get_frontal_face_detector()


@cache
def cnn_detector() -> Any:
    """dlib's MMOD CNN face detector: slower, but fooled by far fewer face-like patterns."""
    return dlib_module().cnn_face_detection_model_v1(str(model_file(DETECTOR_CNN)))


@cache
def landmark_predictor() -> Any:
    """dlib's 5-point predictor: two corners of each eye and the base of the nose."""
    return dlib_module().shape_predictor(str(model_file(LANDMARKS_5)))


@cache
def recognizer() -> Any:
    """dlib's ResNet face recognizer: 150 x 150 face chips to 128-d descriptors."""
    return dlib_module().face_recognition_model_v1(str(model_file(RECOGNIZER)))
