"""Face recognizers: frozen feature extractors that turn a face into the vector the mapper learns from.

Celeb Basis feeds face-recognition features to its small MLP (docs/method.md §1). The network is never
trained here and no gradient flows through it, so an encoder is just: its own crop of the face from the
photo (each network was trained on one exact alignment, and features degrade off it), and a batched
`encode` returning raw float32 features.

- `DlibFaceEncoder` (default, installs from PyPI, free for any use): dlib's ResNet, 128-d, on dlib's own
  150 x 150 face chip. Two photos of one person are under 0.6 apart.
- `OnnxFaceEncoder`: an insightface / ArcFace ONNX model the user already has on disk (the reference uses
  a 512-d IResNet-100; none can be downloaded by anybody). Its crop is the standard 112 x 112 ArcFace
  alignment; its output is L2-normalised, as ArcFace features are compared by cosine.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from anybody.errors import ModelError, UsageError
from anybody.face.alignment import FFHQ_TEMPLATE, template
from anybody.face.detection import Face, shape_of
from anybody.face.geometry import apply, fit_similarity, warp
from anybody.face.models import dlib_module, recognizer


@runtime_checkable
class FaceEncoder(Protocol):
    """A frozen face recognizer: `crop` a face from a photo, `encode` crops to (N, dim) float32."""

    name: str
    dim: int
    same_person_distance: float  # Euclidean distance between two faces' features under which they are one person

    def crop(self, image: Image.Image, face: Face) -> Image.Image:
        """The network's own input crop of `face` from the photo `image`."""
        ...

    def encode(self, crops: list[Image.Image]) -> np.ndarray:
        """(len(crops), dim) float32 features of crops made by `crop` (possibly flipped or re-lit)."""
        ...


class DlibFaceEncoder:
    """dlib's ResNet face recognizer: 128-d descriptors, Euclidean distance under 0.6 = same person."""

    name = "dlib"
    dim = 128
    same_person_distance = 0.6  # dlib's own threshold for its descriptors
    chip_size = 150
    chip_padding = 0.25

    def crop(self, image: Image.Image, face: Face) -> Image.Image:
        """dlib's face chip: the alignment dlib's recognizer was trained on (black beyond the photo)."""
        pixels = np.asarray(image.convert("RGB"))
        chip = dlib_module().get_face_chip(pixels, shape_of(face), size=self.chip_size,
                                           padding=self.chip_padding)
        return Image.fromarray(chip, "RGB")

    def encode(self, crops: list[Image.Image]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        chips = [np.ascontiguousarray(self._chip(crop)) for crop in crops]
        descriptors = recognizer().compute_face_descriptor(chips)  # one batched call
        features = np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32)
        return features.reshape(len(crops), self.dim)

    def _chip(self, crop: Image.Image) -> np.ndarray:
        crop = crop.convert("RGB")
        if crop.size != (self.chip_size, self.chip_size):
            crop = crop.resize((self.chip_size, self.chip_size), Image.Resampling.BICUBIC)
        return np.asarray(crop)


# insightface's ArcFace template at 112 x 112: the eye on the image's left, on its right, the nose tip and
# the mouth corners.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


def arcface_template(size: tuple[int, int] = (112, 112)) -> np.ndarray:
    """dlib's five points in the ArcFace frame: our 512 template carried by the FFHQ -> ArcFace map.

    The reference warps its FFHQ-aligned face to the ArcFace alignment; dlib has no mouth corners or nose
    tip, so the same map (fitted between the two 5-point templates) places dlib's points instead. A model
    with another input size gets the template scaled to it.
    """
    points = apply(fit_similarity(FFHQ_TEMPLATE, ARCFACE_TEMPLATE), template(512))
    return (points + 0.5) * (np.array(size, dtype=np.float64) / 112.0) - 0.5


class OnnxFaceEncoder:
    """An insightface / ArcFace ONNX model on disk: ArcFace-aligned 112 crops, L2-normalised features."""

    same_person_distance = 1.13  # on L2-normalised ArcFace features (DeepFace's LFW-tuned "euclidean_l2")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.name = f"onnx:{self.path.name}"
        if not self.path.is_file():
            raise ModelError(f"The face model {self.path} does not exist", "Check the path of the .onnx file")
        self.session = _onnx_session(str(self.path.resolve()))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = list(model_input.shape)
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ModelError(f"The face model {self.path.name} takes input of shape {shape}, not images",
                             "Use an ArcFace model taking (N, 3, 112, 112) images")
        self.input_size = tuple(side if isinstance(side, int) else 112 for side in (shape[3], shape[2]))
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        feature_shape = list(self.session.get_outputs()[0].shape)[1:]
        if feature_shape and all(isinstance(side, int) for side in feature_shape):
            self.dim = int(np.prod(feature_shape))
        else:  # a symbolic output shape: run the model once to learn its width
            probe = np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32)
            self.dim = int(self._run(probe).reshape(1, -1).shape[1])
        self._template = arcface_template(self.input_size)

    def crop(self, image: Image.Image, face: Face) -> Image.Image:
        """The standard ArcFace alignment (eyes, nose), padded like the aligned face beyond the photo."""
        return warp(image.convert("RGB"), fit_similarity(face.landmarks, self._template), self.input_size)

    def encode(self, crops: list[Image.Image]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack([self._pixels(crop) for crop in crops])
        step = self.fixed_batch or len(batch)  # a model exported with a fixed batch gets chunks of it
        chunks = []
        for start in range(0, len(batch), step):
            chunk = batch[start : start + step]
            padding = step - len(chunk)
            if padding:
                chunk = np.concatenate([chunk, np.zeros((padding, *chunk.shape[1:]), np.float32)])
            chunks.append(self._run(chunk).reshape(step, -1)[: step - padding])
        features = np.concatenate(chunks).astype(np.float32)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        return features / np.maximum(norms, 1e-12)

    def _pixels(self, crop: Image.Image) -> np.ndarray:
        """(3, h, w) float32 in [-1, 1]: ArcFace's (x - 127.5) / 127.5, RGB, channels first."""
        crop = crop.convert("RGB")
        if crop.size != self.input_size:
            crop = crop.resize(self.input_size, Image.Resampling.BICUBIC)
        return ((np.asarray(crop, dtype=np.float32) - 127.5) / 127.5).transpose(2, 0, 1)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: batch})[0])


@cache
def _onnx_session(path: str) -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelError("onnxruntime, needed to run an .onnx face model, is not installed",
                         "Install it with: pip install onnxruntime (or: pip install 'anybody[onnx]')"
                         ) from error
    try:
        available = onnxruntime.get_available_providers()
        preferred = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [name for name in preferred if name in available] or available
        return onnxruntime.InferenceSession(path, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types for unreadable models
        raise ModelError(f"The face model {path} cannot be loaded by onnxruntime ({error})",
                         "Use an insightface / ArcFace .onnx recognition model") from error


def get_face_encoder(spec: str = "dlib") -> FaceEncoder:
    """'dlib' (the default, 128-d) or the path of an ArcFace .onnx file; anything else is an error."""
    if spec == "dlib":
        return _dlib_encoder()
    if str(spec).lower().endswith(".onnx"):
        return OnnxFaceEncoder(spec)
    raise UsageError(f"Unknown face encoder {spec!r}",
                     "Use 'dlib' (the default) or the path of an insightface / ArcFace .onnx model file")


@cache
def _dlib_encoder() -> DlibFaceEncoder:
    recognizer()  # loads the model now, so a missing install is reported before any work
    return DlibFaceEncoder()
