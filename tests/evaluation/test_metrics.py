"""The evaluation's metrics on known cases: real photos through the real recognizer, constructed numbers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anybody.evaluation.metrics import (
    best_match,
    bootstrap_interval,
    cosine,
    detection_rate,
    face_diversity,
    id_prompt,
    id_similarity,
)
from anybody.evaluation.scoring import FaceScorer, same_network
from anybody.face import load_photo


@pytest.fixture(scope="module")
def scorer() -> FaceScorer:
    return FaceScorer.named("dlib")


@pytest.fixture(scope="module")
def reference(scorer: FaceScorer) -> np.ndarray:
    from tests.conftest import SAMPLE_PHOTO

    return scorer.reference(SAMPLE_PHOTO)


@pytest.mark.slow
def test_the_same_photo_scores_one(scorer, reference, sample_photo):
    faces = scorer.faces(load_photo(sample_photo))
    assert len(faces) == 1
    assert best_match(reference, faces) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_the_mirrored_photo_is_in_the_recognizers_same_person_range(scorer, reference, mirrored_photo):
    faces = scorer.faces(load_photo(mirrored_photo))
    assert len(faces) == 1
    distance = float(np.linalg.norm(reference - faces[0]))
    similarity = best_match(reference, faces)
    print(f"mirrored: descriptor distance {distance:.3f}, ID similarity {similarity:.3f}")
    assert 0 < distance < scorer.same_person_distance  # dlib: under 0.6 is one person
    assert 0.8 < similarity < 1.0


@pytest.mark.slow
def test_an_image_without_a_face_scores_zero_and_one_detection_miss(scorer, reference, sample_photo):
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1)), "L").convert("RGB")
    without = scorer.faces(gradient)
    with_face = scorer.faces(load_photo(sample_photo))
    assert without == []
    assert best_match(reference, without) == 0.0 and id_similarity(reference, None) == 0.0
    assert detection_rate([bool(without), bool(with_face)]) == 0.5


def test_id_prompt_zeroes_images_under_the_clip_threshold():
    ids = [0.9, 0.5, 0.7, 0.2]
    clips = [0.30, 0.22, 0.23, 0.10]
    np.testing.assert_allclose(id_prompt(ids, clips), [0.9, 0.0, 0.7, 0.0])  # 0.23 itself passes
    np.testing.assert_allclose(id_prompt(ids, clips, threshold=0.0), ids)
    with pytest.raises(ValueError):
        id_prompt([0.1], [0.2, 0.3])


def test_best_match_scores_each_person_by_the_face_most_like_them():
    alice, bob = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    faces = [np.array([0.1, 1.0]), np.array([1.0, 0.1])]
    assert best_match(alice, faces) == pytest.approx(cosine(alice, faces[1]))
    assert best_match(bob, faces) == pytest.approx(cosine(bob, faces[0]))


def test_face_diversity_is_the_mean_pairwise_distance():
    assert face_diversity([np.zeros(3)]) is None
    assert face_diversity([np.zeros(2), np.array([3.0, 4.0])]) == pytest.approx(5.0)
    square = [np.array(p, dtype=float) for p in ((0, 0), (1, 0), (0, 1), (1, 1))]  # 4 sides 1, 2 diagonals √2
    assert face_diversity(square) == pytest.approx((4 + 2 * np.sqrt(2)) / 6)
    assert face_diversity([np.ones(4)] * 3) == 0.0


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.5, 0.1, 10), rng.normal(0.5, 0.1, 1000)
    small, large = bootstrap_interval(few), bootstrap_interval(many)
    assert small.low < small.mean < small.high and large.low < large.mean < large.high
    assert large.high - large.low < (small.high - small.low) / 3
    assert abs(large.mean - 0.5) < 0.02 and large.low < 0.5 < large.high
    assert bootstrap_interval([]) is None
    assert bootstrap_interval([0.3]).low == bootstrap_interval([0.3]).high == pytest.approx(0.3)


def test_the_scorer_knows_when_it_is_the_learning_encoder(tmp_path):
    assert same_network("dlib", "dlib")
    model = tmp_path / "arcface.onnx"
    assert not same_network(str(model), "dlib")
    assert same_network(str(model), str(tmp_path / "." / "arcface.onnx"))
