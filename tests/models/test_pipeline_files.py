"""Which files of a Hub repository a pipeline needs: `pipeline_files` on file lists shaped as the Hub's diffusers
repositories are (tests/models/hub_repos.py), and the families and kinds read from their JSON files."""

from __future__ import annotations

import json

import pytest

from anybody.errors import ModelError
from anybody.models.download import require_usable
from anybody.models.pipelines import folder_family, folder_selection, pipeline_files, pipeline_kind
from tests.models import hub_repos as hub

SD1_TOKENIZER = [f"tokenizer/{name}" for name in hub.TOKENIZER]


def _sd1_expected(weights: str) -> list[str]:
    """SD 1.x's pipeline with `weights` as each model's weight file suffix ("safetensors", "fp16.safetensors")."""
    model = "model" if weights.endswith("safetensors") else "pytorch_model"
    return sorted(["model_index.json", "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json",
                   *SD1_TOKENIZER, "text_encoder/config.json", f"text_encoder/{model}.{weights}", "unet/config.json",
                   f"unet/diffusion_pytorch_model.{weights}", "vae/config.json",
                   f"vae/diffusion_pytorch_model.{weights}"])


@pytest.mark.parametrize("files", [hub.COMPVIS_SD14, hub.RUNWAY_SD15], ids=["CompVis SD 1.4", "runwayml SD 1.5"])
def test_sd1_takes_one_safetensors_set_per_model_and_nothing_at_the_root(files):
    """No .bin twin, no non_ema UNet, no Flax, no safety checker, no whole-model .ckpt/.safetensors, no picture."""
    full = pipeline_files(files, hub.SD1_INDEX, half=False)
    assert sorted(full.files) == _sd1_expected("safetensors") and full.missing == [] and full.variant is None
    half = pipeline_files(files, hub.SD1_INDEX, half=True)
    assert sorted(half.files) == _sd1_expected("fp16.safetensors") and half.variant == "fp16"
    assert set(half.files) <= set(files)


def test_sd21_in_half_precision_takes_the_fp16_variants_and_no_checkpoint_at_the_root():
    selection = pipeline_files(hub.SD21, hub.SD21_INDEX, half=True)
    assert not [file for file in selection.files if "/" not in file and file != "model_index.json"]
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in selection.files
    assert "text_encoder/model.fp16.safetensors" in selection.files
    assert not [file for file in selection.files if file.endswith((".bin", ".ckpt"))]
    assert "safety_checker" not in {file.split("/")[0] for file in selection.files}  # [null, null] in the index


def test_sdxl_takes_both_text_encoders_and_tokenizers_and_no_onnx_openvino_flax_or_extra_vae():
    selection = pipeline_files(hub.SDXL_BASE, hub.SDXL_INDEX, half=True)
    folders = {file.split("/")[0] for file in selection.files if "/" in file}
    assert folders == {"scheduler", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "vae"}
    assert sorted(file for file in selection.files if file.startswith("text_encoder_2/")) == [
        "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors"]
    assert all(file.endswith((".json", ".txt", ".fp16.safetensors")) for file in selection.files)
    full = pipeline_files(hub.SDXL_BASE, hub.SDXL_INDEX, half=False)
    assert "unet/diffusion_pytorch_model.safetensors" in full.files and full.variant is None
    assert "text_encoder/openvino_model.bin" not in full.files  # a .bin that is not PyTorch's


def test_an_inpainting_repository_is_chosen_from_like_any_other():
    selection = pipeline_files(hub.RUNWAY_INPAINTING, hub.INPAINTING_INDEX, half=False)
    assert sorted(selection.files) == _sd1_expected("safetensors")
    assert "sd-v1-5-inpainting.ckpt" not in selection.files
    assert require_usable("runwayml/stable-diffusion-inpainting", hub.INPAINTING_INDEX) == "inpainting"


def test_what_is_not_a_stable_diffusion_pipeline_is_refused_before_downloading():
    with pytest.raises(ModelError, match=r"not a diffusers pipeline \(it has no model_index.json\)"):
        require_usable("lllyasviel/sd-controlnet-canny", None)  # hub.CONTROLNET: weights at the root, pictures
    assert "model_index.json" not in hub.CONTROLNET
    with pytest.raises(ModelError, match=r"is a FluxPipeline, not a Stable Diffusion .*hf download"):
        require_usable("black-forest-labs/FLUX.1-dev", hub.FLUX_INDEX)
    assert require_usable("CompVis/stable-diffusion-v1-4", hub.SD1_INDEX) == "text-to-image"


def test_only_bin_weights_are_taken_where_there_is_no_safetensors():
    files = [file for file in hub.COMPVIS_SD14 if not file.endswith(".safetensors")]
    selection = pipeline_files(files, hub.SD1_INDEX, half=True)
    assert sorted(selection.files) == _sd1_expected("fp16.bin")


def test_fp16_weights_alone_are_taken_in_full_precision_too_and_loading_must_ask_for_the_variant():
    files = [file for file in hub.SDXL_BASE if not (file.startswith("unet/") and file.endswith("model.safetensors"))]
    selection = pipeline_files(files, hub.SDXL_INDEX, half=False)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in selection.files
    assert "vae/diffusion_pytorch_model.safetensors" in selection.files and selection.variant == "fp16"


def test_a_sharded_set_is_taken_whole_with_its_index_and_counts_only_when_every_shard_is_there():
    shards = ["text_encoder_2/model.fp16-00001-of-00002.safetensors",
              "text_encoder_2/model.fp16-00002-of-00002.safetensors",
              "text_encoder_2/model.safetensors.index.fp16.json",
              "text_encoder_2/model-00001-of-00002.safetensors", "text_encoder_2/model-00002-of-00002.safetensors",
              "text_encoder_2/model.safetensors.index.json"]
    files = [file for file in hub.SDXL_BASE if not file.startswith("text_encoder_2/model")] + shards
    half = pipeline_files(files, hub.SDXL_INDEX, half=True)
    assert sorted(file for file in half.files if file.startswith("text_encoder_2/")) == sorted(
        ["text_encoder_2/config.json", *shards[:3]])
    full = pipeline_files(files, hub.SDXL_INDEX, half=False)
    assert sorted(file for file in full.files if file.startswith("text_encoder_2/model")) == sorted(shards[3:])
    one_shard_short = [file for file in files if not file.endswith("00002-of-00002.safetensors")]
    assert pipeline_files(one_shard_short, hub.SDXL_INDEX, half=True).missing == ["text_encoder_2 weights"]


def test_what_a_file_list_lacks_is_named_by_component():
    files = [file for file in hub.SD21 if not file.startswith(("unet/diffusion", "tokenizer/"))]
    files.remove("vae/config.json")
    assert pipeline_files(files, hub.SD21_INDEX, half=False).missing == ["tokenizer", "unet weights",
                                                                          "vae/config.json"]
    only_non_ema = [file for file in hub.COMPVIS_SD14 if not file.startswith("unet/diffusion_pytorch_model")
                    or "non_ema" in file]
    assert pipeline_files(only_non_ema, hub.SD1_INDEX, half=False).missing == ["unet weights"]


@pytest.mark.parametrize("index, text_encoder, family", [
    (hub.SD1_INDEX, hub.SD15_TEXT_ENCODER, "sd1"), (hub.SD21_INDEX, hub.SD21_TEXT_ENCODER, "sd2"),
    (hub.SDXL_INDEX, hub.SD15_TEXT_ENCODER, "sdxl")], ids=["SD 1.5", "SD 2.1", "SDXL"])
def test_the_family_is_read_from_the_text_encoders_never_from_the_name(tmp_path, index, text_encoder, family):
    folder = tmp_path / "a-model-named-sdxl-v2"
    (folder / "text_encoder").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "text_encoder" / "config.json").write_text(json.dumps(text_encoder))
    assert folder_family(folder, index) == family
    assert pipeline_kind(index) == "text-to-image"
    assert "text_encoder weights" in folder_selection(folder, index).missing


def test_a_folder_without_its_text_encoder_config_has_no_family(tmp_path):
    assert folder_family(tmp_path, hub.SD1_INDEX) is None
    assert pipeline_kind(hub.FLUX_INDEX) is None and pipeline_kind(hub.INPAINTING_INDEX) == "inpainting"
