"""The scene editor's value as the studio's files: the background is the scene photo, the paint in any layer
(its transparency, or a layer without transparency read as black and white) is the mask; nothing painted is no
mask; paint over everything, a layer that is not a picture and pictures the browser sent unreadable are refused
in the page's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anybody.errors import UsageError


@pytest.fixture
def control_tab(web_work: Path):
    """The module, imported once Gradio is set offline (web_work)."""
    from anybody.interfaces.web import control_tab

    return control_tab


def _layer(path: Path, box: tuple[int, int, int, int] | None, mode: str = "RGBA") -> str:
    """A 40 x 30 layer painted in `box` (transparent elsewhere; black elsewhere without transparency)."""
    layer = Image.new(mode, (40, 30), (0, 0, 0, 0) if mode == "RGBA" else 0)
    if box:
        layer.paste((255, 64, 160, 150) if mode == "RGBA" else 255, box)
    layer.save(path)
    return str(path)


def test_the_paint_of_every_layer_is_the_mask_and_a_layer_without_transparency_is_read_as_black_and_white(
        control_tab, studio, tmp_path: Path):
    scene = _layer(tmp_path / "scene.png", None, "RGB")
    value = {"background": scene, "layers": [_layer(tmp_path / "a.png", (0, 0, 10, 10)),
                                             _layer(tmp_path / "b.png", (20, 10, 30, 20), "L")]}
    background, mask = control_tab.scene_files(value, studio)
    assert background == scene and Path(mask).name == control_tab.MASK_FILE and Path(mask).is_relative_to(studio.work)
    painted = np.asarray(Image.open(mask))
    expected = np.zeros((30, 40), np.uint8)
    expected[0:10, 0:10] = expected[10:20, 20:30] = 255  # see-through paint counts whole: what is painted is redrawn
    assert (painted == expected).all()


def test_nothing_painted_is_no_mask_and_no_scene_is_nothing(control_tab, studio, tmp_path: Path):
    scene = _layer(tmp_path / "scene.png", None, "RGB")
    assert control_tab.scene_files({"background": scene, "layers": [_layer(tmp_path / "a.png", None)]},
                                   studio) == (scene, None)
    assert control_tab.scene_files(None, studio) == (None, None)
    assert control_tab.scene_files({"background": None, "layers": [], "composite": None}, studio) == (None, None)


@pytest.mark.parametrize(("case", "refusal"), [
    ("everything painted", "The paint covers the whole scene photo: nothing of it would be kept. Erase the paint"),
    ("a layer that is not a picture", "The painted layer 1 is not an image. Paint on the scene photo again."),
    ("layers of two sizes", "The painted layer 2 has another size than the others."),
    ("unreadable", "The scene photo could not be read. Upload it again"),
    ("not an editor's value", "The scene must be a photo and the layers painted on it."),
])
def test_what_cannot_be_a_scene_and_its_mask_is_refused_in_the_pages_words(control_tab, studio, tmp_path: Path,
                                                                            case: str, refusal: str):
    scene = _layer(tmp_path / "scene.png", None, "RGB")
    (tmp_path / "notes.png").write_text("not a picture")
    Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(tmp_path / "small.png")
    value = {
        "everything painted": {"background": scene, "layers": [_layer(tmp_path / "a.png", (0, 0, 40, 30))]},
        "a layer that is not a picture": {"background": scene, "layers": [str(tmp_path / "notes.png")]},
        "layers of two sizes": {"background": scene, "layers": [_layer(tmp_path / "b.png", (0, 0, 5, 5)),
                                                                str(tmp_path / "small.png")]},
        "unreadable": control_tab.UNREADABLE,
        "not an editor's value": ["scene.png"],
    }[case]
    with pytest.raises(UsageError) as refused:
        control_tab.scene_files(value, studio)
    assert str(refused.value).startswith(refusal) and "--" not in str(refused.value)
