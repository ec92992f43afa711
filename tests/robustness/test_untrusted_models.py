"""Model files are untrusted too: code inside a model folder or a pickled `.ckpt` is refused, never run.

(Imported embeddings and identity files: tests/robustness/test_bad_input_table.py and test_fuzz.py.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from anybody.interfaces.cli import main
from tests.robustness.bad_files import SAMPLE, Payload


def _learn(model: str) -> list[str]:
    return ["learn", "me.jpg", "--name", "m", "--model", model, "--library", "lib"]


def test_a_model_folder_carrying_python_code_is_refused_without_running_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLE, "me.jpg")
    folder = tmp_path / "model"
    folder.mkdir()
    index = {"_class_name": ["pipe", "Pipe"], "_diffusers_version": "0.30.0",
             "unet": ["diffusers", "UNet2DConditionModel"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    marker = tmp_path / "MODEL-CODE-RAN"
    (folder / "pipe.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                    "from diffusers import DiffusionPipeline\n\nclass Pipe(DiffusionPipeline):\n"
                                    "    pass\n")
    assert main(_learn("model")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The diffusers folder model could not be loaded") and "custom code" in err
    assert not marker.exists()  # anybody never passes trust_remote_code: diffusers refuses the file


def test_a_pickled_checkpoint_carrying_code_is_refused_without_running_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLE, "me.jpg")
    marker = tmp_path / "CKPT-CODE-RAN"
    torch.save({"state_dict": {"weight": torch.zeros(1)}, "extra": Payload(marker)}, tmp_path / "model.ckpt")
    assert main(_learn("model.ckpt")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The checkpoint model.ckpt carries Python code") and "exec" in err
    assert not marker.exists()  # diffusers reads .ckpt with torch.load(weights_only=True)
    assert not Path("lib").exists()  # and nothing was learned or written
