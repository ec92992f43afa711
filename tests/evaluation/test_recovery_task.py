"""The synthetic recovery task through the harness: every method learns back an identity planted in the
tiny model, and the table says how close each got and how much of the loss it removed."""

from __future__ import annotations

import json
import shutil

import pytest

from anybody.evaluation import RecoverySettings, recover


@pytest.mark.slow
def test_every_method_moves_toward_the_planted_identity_and_a_rerun_reuses_the_runs(tmp_path, sample_photo):
    faces = tmp_path / "faces"
    faces.mkdir()
    shutil.copy(sample_photo, faces / "eileen.jpg")
    settings = RecoverySettings(photos=str(faces), model="tiny", methods=["celeb-basis", "textual-inversion"],
                                steps=20, views=4, out=str(tmp_path / "recovery"))
    results = recover(settings, progress=False)
    assert [r["method"] for r in results] == ["celeb-basis", "textual-inversion"]
    for result in results:
        print(result)
        assert result["steps"] == 20 and result["tokens"] == 2
        assert result["cosine_after"] > result["cosine_before"] + 0.1
        assert result["relative_distance"] < 1 and result["loss_removed"] > 0.05
    table = (tmp_path / "recovery" / "recovery.md").read_text()
    assert "| celeb-basis | 0.01 | 2 |" in table and "| textual-inversion |" in table
    saved = json.loads((tmp_path / "recovery" / "recovery.json").read_text())
    assert saved["results"] == results and saved["settings"]["steps"] == 20
    assert recover(settings, progress=False) == results  # each finished run is read back, not learned again
