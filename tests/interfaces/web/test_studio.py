"""The web app's studio without the web: what a face preview shows, the face kept beside an identity, the
model's vocabulary between jobs, and drawings that leave the kept pipeline as they found it."""

from __future__ import annotations

from pathlib import Path

import pytest

from anybody.errors import Interrupted, PhotoError, UsageError
from anybody.identity import Identity
from tests.robustness import bad_files


def test_the_preview_numbers_every_face_and_aligns_the_chosen_one(studio, photos: Path):
    one = studio.preview(photos / "sample_face.jpg")
    assert one.sizes == [90] and one.chosen == 0
    assert one.annotated.size == (512, 512) and one.aligned.height == 512 and one.aligned.width > 512
    two = studio.preview(photos / "two-faces.jpg", 1)
    assert len(two.sizes) == 2 and two.sizes[0] > two.sizes[1] and two.chosen == 1


@pytest.mark.parametrize(("photo", "message"), [
    ("no-face.png", "No face was found in the photo. Use a photo where one face is clearly visible"),
    ("notes.jpg", "notes.jpg is not an image anybody can read. Use a JPEG, PNG or WebP photo"),
])
def test_the_preview_refuses_with_the_cli_line(studio, photos: Path, photo: str, message: str):
    with pytest.raises(PhotoError) as refused:
        studio.preview(photos / photo)
    assert message in str(refused.value)


@pytest.mark.slow
def test_a_stopped_run_is_offered_and_resumed_on_the_kept_pipeline(studio, photos: Path):
    """The app's pipeline lives on between jobs; the resumed run still finds its checkpoint's basis."""
    def stop_at_three(step: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        studio.learn(photos / "sample_face.jpg", "eli", "celeb-basis", 200, callback=stop_at_three)
    assert studio.interrupted("eli") and not studio.interrupted("../no")
    steps = []
    identity = studio.learn(photos / "sample_face.jpg", "eli", "celeb-basis", 6,
                            callback=lambda step, loss: steps.append(step))
    assert steps == [4, 5, 6] and not studio.interrupted("eli")
    assert studio.face_of(identity).size == (160, 160)

    identity.metadata["note"] = "learned again elsewhere"
    identity.save(library=studio.library)  # a new file: its checksum changes, the kept face no longer belongs
    assert studio.face_of(Identity.load("eli", studio.library)) is None


@pytest.mark.slow
def test_drawing_a_sefi_identity_leaves_the_pipeline_plain(studio, photos: Path):
    identity = studio.learn(photos / "sample_face.jpg", "fay", "sefi", 3)
    assert identity.stages
    plain = {"negative_prompt": "", "seed": 3, "steps": 2, "guidance": 7.5, "width": None, "height": None, "count": 1}
    studio.draw("a photo of a cat", [], **plain)
    vocabulary = len(studio.pipe.tokenizer)
    result = studio.draw("a photo of fay", ["fay"], **plain)
    assert [path.name for path in result.paths] == ["00-seed3.png"]
    assert studio.attention("a photo of fay", ["fay"], seed=3, steps=2, guidance=7.5).is_file()
    assert not hasattr(studio.pipe, "anybody_stage_switch")
    studio.draw("a photo of a cat", [], **plain)
    assert len(studio.pipe.tokenizer) == vocabulary  # each job starts from the model's own vocabulary


@pytest.mark.slow
def test_a_refused_drawing_leaves_no_folder(studio):
    bad_files.identity("gus").save(library=studio.library)
    before = sorted(studio.out.iterdir()) if studio.out.exists() else []
    with pytest.raises(UsageError, match="The prompt does not mention gus"):
        studio.draw("a photo of a cat", ["gus"], negative_prompt="", seed=1, steps=2, guidance=7.5, width=None,
                    height=None, count=1)
    assert (sorted(studio.out.iterdir()) if studio.out.exists() else []) == before
