"""Face encoders: dlib's real recognizer, and the ONNX backend with a small model built here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from anybody.errors import ModelError, UsageError
from anybody.face import DlibFaceEncoder, FaceEncoder, OnnxFaceEncoder, get_face_encoder, prepare_face
from anybody.face.encoders import ARCFACE_TEMPLATE, arcface_template
from anybody.face.geometry import apply, fit_similarity
from anybody.face.models import model_file


def test_the_dlib_descriptor(sample_input):
    encoder = get_face_encoder("dlib")
    assert isinstance(encoder, DlibFaceEncoder) and isinstance(encoder, FaceEncoder)
    assert encoder.name == "dlib" and encoder.dim == 128
    assert sample_input.recognizer_crop.size == (150, 150)
    assert sample_input.descriptor.shape == (128,) and sample_input.descriptor.dtype == np.float32
    assert np.isfinite(sample_input.descriptor).all() and np.linalg.norm(sample_input.descriptor) > 0.1


def test_encode_is_batched_and_matches_one_at_a_time(sample_input):
    encoder = get_face_encoder()
    crop = sample_input.recognizer_crop
    flipped = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    batch = encoder.encode([crop, flipped])
    assert batch.shape == (2, 128) and batch.dtype == np.float32
    assert np.allclose(batch[0], sample_input.descriptor, atol=1e-5)
    assert np.allclose(batch[1], encoder.encode([flipped])[0], atol=1e-5)
    assert encoder.encode([]).shape == (0, 128)


def test_the_same_face_flipped_and_relit_is_the_same_person(photo, sample_input):
    relit = ImageEnhance.Contrast(ImageEnhance.Brightness(ImageOps.mirror(photo)).enhance(1.3)).enhance(0.75)
    other = prepare_face(relit)
    distance = float(np.linalg.norm(other.descriptor - sample_input.descriptor))
    assert distance < 0.6


def test_a_different_input_is_far_away(photo, sample_input):
    """Noise in place of the face: no face is found there; encoded anyway, it is nobody."""
    encoder = get_face_encoder()
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8))
    distance = float(np.linalg.norm(encoder.encode([noise])[0] - sample_input.descriptor))
    assert distance > 0.6


def test_an_unknown_encoder_is_a_usage_error():
    with pytest.raises(UsageError, match=r"Unknown face encoder 'facenet'"):
        get_face_encoder("facenet")


def test_a_missing_onnx_file(tmp_path):
    with pytest.raises(ModelError, match=r"does not exist"):
        get_face_encoder(str(tmp_path / "arcface.onnx"))


# --- the ONNX backend -----------------------------------------------------------------------------------------


def _tiny_arcface(path: Path, batch: int | str, seed: int = 0) -> np.ndarray:
    """An ONNX "recognizer" (N, 3, 112, 112) -> (N, 512): 14 x 14 average pooling, flatten, one matmul."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((3 * 8 * 8, 512)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["features"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 512])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any onnxruntime of the last years
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight


@pytest.mark.parametrize("batch", ["N", 1, 3])
def test_the_onnx_encoder(tmp_path, photo, sample_faces, batch):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "tiny_arcface.onnx"
    weight = _tiny_arcface(path, batch)
    encoder = get_face_encoder(str(path))
    assert isinstance(encoder, OnnxFaceEncoder) and isinstance(encoder, FaceEncoder)
    assert encoder.dim == 512 and encoder.name == "onnx:tiny_arcface.onnx"
    crop = encoder.crop(photo, sample_faces[0])
    assert crop.size == (112, 112) and crop.mode == "RGB"
    flipped = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    features = encoder.encode([crop, flipped, crop, flipped])
    assert features.shape == (4, 512) and features.dtype == np.float32
    assert np.allclose(features[:2], features[2:], atol=1e-5)
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    # The same computation by hand: (x - 127.5) / 127.5, channels first, pooled, projected, normalised.
    pixels = (np.asarray(crop, np.float32) - 127.5) / 127.5
    pooled = pixels.transpose(2, 0, 1).reshape(3, 8, 14, 8, 14).mean(axis=(2, 4)).reshape(-1)
    expected = pooled @ weight
    assert np.allclose(features[0], expected / np.linalg.norm(expected), atol=1e-4)


def test_the_arcface_crop_puts_the_eyes_on_the_arcface_template(sample_faces):
    points = arcface_template()
    eyes = np.stack([points[2:4].mean(axis=0), points[0:2].mean(axis=0)])
    assert np.abs(eyes - ARCFACE_TEMPLATE[:2]).max() < 1.5
    assert ARCFACE_TEMPLATE[2, 1] < points[4, 1] < ARCFACE_TEMPLATE[3, 1]  # nose base: below the tip, above the mouth
    face = sample_faces[0]
    mapped = apply(fit_similarity(face.landmarks, arcface_template()), face.eye_centres)
    assert np.abs(mapped - ARCFACE_TEMPLATE[:2]).max() < 2.5


def test_a_file_that_is_not_a_model(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot be loaded"):
        get_face_encoder(str(path))


def test_onnxruntime_missing_names_the_install_command(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` meets when not installed
    with pytest.raises(ModelError, match=r"pip install onnxruntime"):
        get_face_encoder(str(path))


def test_missing_dlib_models_name_the_install_command(monkeypatch):
    model_file.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(ModelError, match=r"pip install dlib-bin face-recognition-models"):
            model_file("shape_predictor_5_face_landmarks.dat")
    finally:
        monkeypatch.undo()
        model_file.cache_clear()
    assert model_file("shape_predictor_5_face_landmarks.dat").is_file()
