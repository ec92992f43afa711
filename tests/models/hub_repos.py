"""File lists and model_index.json files shaped as the Hub's diffusers repositories are: per-component folders
with the same weights as .bin and .safetensors, fp16 and non_ema variants, Flax, ONNX and OpenVINO exports,
whole-model .ckpt/.safetensors files, inference YAMLs and pictures at the root."""

from __future__ import annotations

TOKENIZER = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]


def _folder(name: str, files: list[str]) -> list[str]:
    return [f"{name}/{file}" for file in files]


def _weights(name: str, stem: str, *variants: str, formats: tuple[str, ...] = ("bin", "safetensors")) -> list[str]:
    return [f"{name}/{stem}{f'.{variant}' if variant else ''}.{form}" for variant in variants for form in formats]


def _sd1_components(*, flax: bool) -> list[str]:
    """SD 1.4/1.5's components: every weight as .bin and .safetensors, full and fp16; the UNet also non_ema."""
    files = ["feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json",
             *_folder("tokenizer", TOKENIZER)]
    for name, bin_stem, safe_stem, flax_stem in (
            ("safety_checker", "pytorch_model", "model", "flax_model"),
            ("text_encoder", "pytorch_model", "model", "flax_model"),
            ("unet", "diffusion_pytorch_model", "diffusion_pytorch_model", "diffusion_flax_model"),
            ("vae", "diffusion_pytorch_model", "diffusion_pytorch_model", "diffusion_flax_model")):
        files += [f"{name}/config.json", *_weights(name, bin_stem, "", "fp16", formats=("bin",)),
                  *_weights(name, safe_stem, "", "fp16", formats=("safetensors",))]
        if flax:
            files.append(f"{name}/{flax_stem}.msgpack")
    return [*files, *_weights("unet", "diffusion_pytorch_model", "non_ema")]


SD1_INDEX = {
    "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
COMPVIS_SD14 = [".gitattributes", "README.md", "model_index.json", "v1-variants-scores.jpg",
                *_sd1_components(flax=True)]
RUNWAY_SD15 = [".gitattributes", "README.md", "model_index.json", "v1-inference.yaml", "v1-5-pruned-emaonly.ckpt",
               "v1-5-pruned-emaonly.safetensors", "v1-5-pruned.ckpt", "v1-5-pruned.safetensors",
               *_sd1_components(flax=False)]
INPAINTING_INDEX = {**SD1_INDEX, "_class_name": "StableDiffusionInpaintPipeline"}
RUNWAY_INPAINTING = [".gitattributes", "README.md", "model_index.json", "sd-v1-5-inpainting.ckpt",
                     *(file for file in _sd1_components(flax=False) if "non_ema" not in file)]

SD21_INDEX = {
    "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.10.0.dev0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": False,
    "safety_checker": [None, None], "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
}
SD21 = [".gitattributes", "README.md", "model_index.json", "v2-1_768-ema-pruned.ckpt",
        "v2-1_768-ema-pruned.safetensors", "v2-1_768-nonema-pruned.ckpt", "v2-1_768-nonema-pruned.safetensors",
        "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json",
        *_folder("tokenizer", TOKENIZER), "text_encoder/config.json",
        *_weights("text_encoder", "pytorch_model", "", "fp16", formats=("bin",)),
        *_weights("text_encoder", "model", "", "fp16", formats=("safetensors",)),
        "unet/config.json", *_weights("unet", "diffusion_pytorch_model", "", "fp16"),
        "vae/config.json", *_weights("vae", "diffusion_pytorch_model", "", "fp16")]

SDXL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True, "add_watermarker": None,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
SDXL_BASE = [".gitattributes", "01.png", "LICENSE.md", "README.md", "comparison.png", "model_index.json",
             "pipeline.png", "sd_xl_base_1.0.safetensors", "sd_xl_base_1.0_0.9vae.safetensors",
             "sd_xl_offset_example-lora_1.0.safetensors", "scheduler/scheduler_config.json",
             *_folder("tokenizer", TOKENIZER), *_folder("tokenizer_2", TOKENIZER)]
for _encoder in ("text_encoder", "text_encoder_2"):
    SDXL_BASE += [f"{_encoder}/config.json", f"{_encoder}/flax_model.msgpack", f"{_encoder}/model.onnx",
                  f"{_encoder}/openvino_model.bin", f"{_encoder}/openvino_model.xml",
                  *_weights(_encoder, "model", "", "fp16", formats=("safetensors",))]
SDXL_BASE += ["text_encoder_2/model.onnx_data", "unet/config.json", "unet/diffusion_flax_model.msgpack",
              "unet/model.onnx", "unet/model.onnx_data", "unet/openvino_model.bin", "unet/openvino_model.xml",
              *_weights("unet", "diffusion_pytorch_model", "", "fp16", formats=("safetensors",)),
              "vae/config.json", "vae/diffusion_flax_model.msgpack",
              *_weights("vae", "diffusion_pytorch_model", "", "fp16", formats=("safetensors",)),
              "vae_1_0/config.json", *_weights("vae_1_0", "diffusion_pytorch_model", "", "fp16",
                                               formats=("safetensors",)),
              "vae_decoder/config.json", "vae_decoder/model.onnx", "vae_encoder/config.json",
              "vae_encoder/model.onnx"]

CONTROLNET = [".gitattributes", "README.md", "config.json", "diffusion_pytorch_model.bin",
              "diffusion_pytorch_model.safetensors", "images/bird.png", "images/bird_canny.png",
              "images/bird_canny_out.png"]
FLUX_INDEX = {"_class_name": "FluxPipeline", "_diffusers_version": "0.30.0.dev0",
              "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
              "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
              "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}

# What the text encoders' config.json files say that tells the families apart (the rest is alike).
SD15_TEXT_ENCODER = {"architectures": ["CLIPTextModel"], "hidden_act": "quick_gelu", "hidden_size": 768,
                     "num_hidden_layers": 12, "projection_dim": 768}
SD21_TEXT_ENCODER = {"architectures": ["CLIPTextModel"], "hidden_act": "gelu", "hidden_size": 1024,
                     "num_hidden_layers": 23, "projection_dim": 512}
