"""The web app's studio without the web: what a face preview shows, the face of every identity, the model's
vocabulary between jobs, and drawings that leave the kept pipeline as they found it."""

from __future__ import annotations

from pathlib import Path

import pytest

from anybody.errors import Interrupted, PhotoError, UsageError
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
    assert identity.face_picture().size == (96, 96)


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


@pytest.mark.slow
def test_every_identity_shows_the_face_it_was_learned_from_or_says_why_not(web_work, photos: Path, tmp_path: Path):
    """The face comes from the identity file, so an identity learned by the command line shows it as one
    learned in the page does; imported and mixed ones, and files from before faces were kept, say why not."""
    from safetensors.torch import save_file

    from anybody.identity import Identity
    from anybody.identity.mix import mix
    from anybody.interfaces.cli import main
    from anybody.interfaces.web.studio import IMPORTED, MIXED, NO_FACE_KEPT, UNREADABLE, Studio

    library = tmp_path / "library"
    assert main(["learn", str(photos / "sample_face.jpg"), "--model", "tiny", "--library", str(library),
                 "--name", "ada", "--steps", "2"]) == 0
    save_file({"emb_params": bad_files.identity("x").embeddings}, str(tmp_path / "embedding.safetensors"))
    assert main(["import", str(tmp_path / "embedding.safetensors"), "--name", "imp", "--library", str(library)]) == 0
    for parent in ("bea", "cat"):
        bad_files.identity(parent).save(library=library)
    mix({"bea": 0.5, "cat": 0.5}, "bea_cat", library=library)
    (library / "junk.safetensors").write_bytes(b"not an identity")

    studio = Studio("tiny", work=web_work, out=tmp_path / "out", library=library)
    entries = {entry.name: entry for entry in studio.entries()}
    learned = Identity.load("ada", library)
    assert entries["ada"].face.size == (96, 96) and not entries["ada"].face_placeholder
    assert entries["ada"].face.tobytes() == learned.face_picture().tobytes()
    assert {name: (entry.face, entry.face_placeholder) for name, entry in entries.items() if name != "ada"} == {
        "imp": (None, IMPORTED), "bea_cat": (None, MIXED), "bea": (None, NO_FACE_KEPT), "cat": (None, NO_FACE_KEPT),
        "junk": (None, UNREADABLE)}


@pytest.mark.slow
def test_a_drawing_reports_every_step_and_a_stop_keeps_the_images_finished(studio):
    bad_files.identity("hal").save(library=studio.library)
    seen = []

    def stop_in_the_second_image(image: int, step: int, steps: int) -> bool:
        seen.append((image, step, steps))
        return image == 1

    result = studio.draw("a photo of hal", ["hal"], negative_prompt="", seed=4, steps=2, guidance=7.5, width=None,
                         height=None, count=3, on_step=stop_in_the_second_image)
    assert seen == [(0, 1, 2), (0, 2, 2), (1, 1, 2)]
    assert result.stopped and result.seeds == [4] and [path.name for path in result.paths] == ["00-seed4.png"]
