"""One person from several photos: every photo's views feed one identity, whose file lists every photo.

Real photos throughout: the sample (Eileen Collins), two edits of it (mirrored; colour-shifted and cropped),
and, as someone else, Grace Hopper's official U.S. Navy portrait (public domain, tests/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from anybody.errors import UsageError
from anybody.face import prepare_face
from anybody.identity import Identity
from anybody.identity.file import face_thumbnail
from anybody.learning import Interrupted, LearnConfig, check_names, learn
from anybody.learning.photos import unlike_faces
from anybody.learning.train import fit, prepare, sample_batch, save_identities
from tests.robustness.bad_files import portrait

OTHER_PERSON = Path(__file__).resolve().parents[1] / "data" / "grace_hopper.jpg"
QUICK = {"steps": 2, "views": 3, "checkpoint_every": 2}


def edits_of(image: Image.Image, folder: Path) -> list[Path]:
    """The photo, mirrored, and colour-shifted (warmer, less saturated) and cropped: one face, three photos."""
    width, height = image.size
    warmer = ImageEnhance.Color(image).enhance(0.6)
    warmer = Image.merge("RGB", [band.point(lambda value, gain=gain: min(255, round(value * gain)))
                                 for band, gain in zip(warmer.split(), (1.1, 1.0, 0.85))])
    pictures = {"me1.jpg": image, "me2.jpg": ImageOps.mirror(image),
                "me3.jpg": warmer.crop((width // 8, 0, width - width // 16, height - height // 8))}
    folder.mkdir(parents=True, exist_ok=True)
    for name, picture in pictures.items():
        picture.save(folder / name, quality=95)
    return [folder / name for name in pictures]


@pytest.fixture(scope="module")
def three_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return edits_of(portrait(), tmp_path_factory.mktemp("photos"))  # the sample's face, 256 px: quicker to find


@pytest.mark.slow
def test_three_photos_of_one_face_make_one_identity_from_all_their_views(tiny_pipe, three_photos, library,
                                                                        anybody_log):
    config = LearnConfig(**QUICK)
    run = prepare([three_photos], ["eileen"], tiny_pipe, config, library=library, progress=False)
    try:
        bank = run.banks[0]
        assert len(run.banks) == 1 and bank.features.shape[0] == bank.latents.shape[0] == 3 * config.views
        # Each photo's first view is its plain face: three different pictures, three different features.
        plain = bank.features[:: config.views]
        assert all(not torch.equal(plain[i], plain[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
        # Batches draw views of every photo.
        drawn = {int(torch.nonzero((bank.features == row).all(dim=1))[0]) // config.views
                 for _ in range(30) for row in sample_batch(run).features}
        assert drawn == {0, 1, 2}
        fit(run, progress=False)
        identity = save_identities(run)[0]
        expected = run.learner.coefficients(bank.features)["text_encoder"].mean(dim=0)
        assert torch.allclose(identity.coefficients, expected.cpu(), atol=1e-6)  # the mean over all 9 views
    finally:
        run.text.remove()
    assert not anybody_log.records, "three photos of one face draw no warning"

    loaded = Identity.load("eileen", library)
    assert loaded.photos == ["me1.jpg", "me2.jpg", "me3.jpg"] and loaded.metadata["photo"] == "me1.jpg"
    descriptors = np.stack([face.descriptor for face in run.faces[0]])
    assert loaded.face_descriptors.shape == (3, 128)
    assert torch.allclose(loaded.face_descriptors, torch.from_numpy(descriptors), atol=1e-6)
    assert torch.allclose(loaded.face_descriptor, loaded.face_descriptors.mean(dim=0), atol=1e-7)


@pytest.mark.slow
def test_a_photo_of_someone_else_is_named_in_a_warning(tiny_pipe, three_photos, library, anybody_log):
    photos = [*three_photos[:2], OTHER_PERSON]
    identity = learn(photos, "eileen", tiny_pipe, LearnConfig(steps=1, views=2), library=library, progress=False,
                     same_person=True)[0]
    warned = sorted({record.getMessage() for record in anybody_log.records})  # caught here and via the root
    assert len(warned) == 1, warned
    assert warned[0].startswith("The photo grace_hopper.jpg may show someone else: its face is 0.6")
    assert "over the face recognizer's same-person distance of 0.60" in warned[0]
    assert identity.photos == ["me1.jpg", "me2.jpg", "grace_hopper.jpg"]  # a warning: learning goes on
    assert Identity.load(identity.path).face_descriptors.shape == (3, 128)


def test_unlike_faces_names_the_odd_one_and_both_of_two_that_disagree():
    near, far = np.zeros(4), np.array([1.0, 0, 0, 0])
    assert unlike_faces([near, near + 0.1, far], 0.6) == [(2, pytest.approx((1 + 0.84**0.5) / 2))]
    assert [index for index, _ in unlike_faces([near, far], 0.6)] == [0, 1]
    assert unlike_faces([near], 0.6) == [] and unlike_faces([near, near + 0.1, near - 0.1], 0.6) == []


def test_with_one_photo_per_identity_the_views_are_drawn_as_before(tiny_pipe, sample_photo, library):
    """The random stream is the one a single `randint(views)` draw gave: recovery and resume results hold."""
    config = LearnConfig(**QUICK)
    run = prepare([sample_photo], ["eileen"], tiny_pipe, config, library=library, progress=False)
    try:
        state = run.generator.get_state()
        features = sample_batch(run).features
        replay = torch.Generator().set_state(state)
        torch.randint(1, (config.batch_size,), generator=replay)  # who
        view = torch.randint(config.views, (config.batch_size,), generator=replay)
        assert torch.equal(features, run.banks[0].features[view])
    finally:
        run.text.remove()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sefi", "textual-inversion"])
def test_every_method_learns_one_identity_from_several_photos(tiny_pipe, three_photos, library, method):
    identity = learn(three_photos, "eileen", tiny_pipe, LearnConfig.for_method(method, **QUICK), library=library,
                     progress=False, same_person=True)[0]
    loaded = Identity.load(identity.path)
    assert loaded.method == method and loaded.photos == ["me1.jpg", "me2.jpg", "me3.jpg"]
    assert loaded.face_descriptors.shape == (3, 128)
    assert loaded.stages == (5 if method == "sefi" else 0)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny-sd2", "tiny-sdxl"])
def test_every_family_learns_one_identity_from_several_photos(tiny_pipeline, three_photos, library, model):
    identity = learn(three_photos, "eileen", tiny_pipeline(model), LearnConfig(**QUICK), library=library,
                     progress=False, same_person=True)[0]
    loaded = Identity.load(identity.path)
    assert loaded.photos == ["me1.jpg", "me2.jpg", "me3.jpg"] and loaded.face_descriptors.shape == (3, 128)
    assert set(loaded.encoder_coefficients) == set(loaded.encoder_embeddings)


@pytest.mark.slow
def test_joint_learning_takes_a_list_of_photos_per_person(tiny_pipe, three_photos, library):
    """From Python, several people each from several photos: one item (a list) per name."""
    alice, bob = learn([three_photos[:2], three_photos[2]], ["alice", "bob"], tiny_pipe, LearnConfig(**QUICK),
                       library=library, progress=False)
    assert alice.photos == ["me1.jpg", "me2.jpg"] and bob.photos == ["me3.jpg"]
    assert alice.face_descriptors.shape == (2, 128) and bob.face_descriptors.shape == (1, 128)
    assert torch.equal(bob.face_thumbnail, face_thumbnail(prepare_face(three_photos[2]).aligned))  # his own face


@pytest.mark.slow
def test_resuming_with_other_photos_is_refused(tiny_pipe, three_photos, library):
    def stop(step: int, loss: float) -> None:
        raise KeyboardInterrupt

    config = LearnConfig(steps=4, views=2, checkpoint_every=4)
    with pytest.raises(Interrupted, match="interrupted after step 1"):
        learn(three_photos, "eileen", tiny_pipe, config, library=library, progress=False, same_person=True,
              callback=stop)
    with pytest.raises(UsageError, match="The checkpoint was made with other settings, photos or model"):
        learn(three_photos[:2], "eileen", tiny_pipe, config, library=library, progress=False, same_person=True,
              resume=True)


@pytest.mark.parametrize(("photos", "names", "same_person", "message"), [
    (["a.jpg", "b.jpg"], ["alice", "bob"], True, "--same-person learns one identity from all the photos, but 2 names "
                                                 "were given"),
    (["a.jpg", "b.jpg"], ["alice"], False, "2 photos and 1 name were given. Give exactly one name per photo, e.g. "
                                           "--name alice,bob, or one name and --same-person"),
    (["a.jpg", "./a.jpg"], ["alice"], True, "The photo a.jpg is given twice for one identity"),
    ([["a.jpg", "b.jpg"], "c.jpg"], ["alice"], False, "2 groups of photos and 1 name were given"),
    ([[], "c.jpg"], ["alice", "bob"], False, "An identity was given an empty list of photos"),
])
def test_names_and_photos_that_do_not_pair_are_refused_before_loading(photos, names, same_person, message, library):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_names(photos, names, LearnConfig(), library, same_person=same_person)
