"""Cross-attention control for SeFi-IDE: record attention maps, split keys and values, score and draw them.

- `install(unet, store)` puts `CrossAttentionProcessor`s on the UNet's cross-attention layers (through
  diffusers' public processor API; self-attention is left alone) and gives back a handle that restores
  the previous processors. An `AttentionStore` steers them: which resolution to record, whether to keep
  gradients, which encoding feeds the values (`value_states`) and which reference prompt to score
  against the same queries (`reference_states`).
- `cross_attention_layers`, `cross_attention_resolutions`, `resolution_for`: where the layers are and at
  which query resolution they run, derived from the UNet's blocks and the latent size.
- `face_attention_loss`: SeFi-IDE's MSE between the reference and target maps.
- `attention_heatmaps`: a Figure-1-style sheet of per-word maps over a generated picture.
- Per-person regions: `parse_region` / `check_regions` read "alice=left" or a box of fractions (no model
  library imported); `drawn_in_regions(pipe, prompt, {tokens: region}, guidance_scale)` keeps each
  identity's tokens inside its region in every cross-attention layer while `pipe` draws (`RegionMasks`).

One SeFi-IDE training step (one UNet call gives the noise prediction and both maps, because A_r and
A_t must come from the same queries, and the queries of a deep layer depend on the prompt):

    store = AttentionStore(resolution_for(unet, latent_size, SEFI_LEVEL), keep_grad=True)
    with install(unet, store):                       # once, around the whole training loop
        for step in ...:
            store.clear()
            store.reference_states = encode("a photo of the face of person")   # constant target
            store.value_states = encode(prompt with the stage's P^V token)      # values
            keys = encode(prompt with the stage's P^K token)                    # keys (the UNet argument)
            noise_pred = unet(noisy_latents, t, encoder_hidden_states=keys).sample
            loss = mse(noise_pred, noise) + PAPER_WEIGHT * face_attention_loss(
                store.reference_maps(), store.target_maps())
            store.recording = False                  # a checkpointed backward re-runs the forward
            loss.backward()
            store.recording = True
"""

from typing import TYPE_CHECKING

from anybody.lazy import lazy_exports

if TYPE_CHECKING:
    from anybody.attention.heatmaps import (
        AttentionAverager,
        HeatmapResult,
        HeatmapSheet,
        attention_heatmaps,
        colormap,
        render_heatmaps,
        word_maps,
    )
    from anybody.attention.layers import (
        SEFI_LEVEL,
        CrossAttentionLayer,
        Resolution,
        block_resolutions,
        cross_attention_layers,
        cross_attention_modules,
        cross_attention_resolutions,
        latent_size_of,
        resolution_for,
    )
    from anybody.attention.loss import PAPER_WEIGHT, TokenChoice, face_attention_loss
    from anybody.attention.processors import CrossAttentionProcessor, InstalledProcessors, install
    from anybody.attention.region_masks import RegionMasks, drawn_in_regions, soft_mask
    from anybody.attention.regions import FEATHER, PRESETS, Region, check_regions, parse_region
    from anybody.attention.store import AttentionRecord, AttentionStore, LogitBias
    from anybody.attention.tokens import PromptWord, pipeline_prompt, prompt_length, prompt_words, token_positions

_EXPORTS = {
    "heatmaps": (
        "AttentionAverager",
        "HeatmapResult",
        "HeatmapSheet",
        "attention_heatmaps",
        "colormap",
        "render_heatmaps",
        "word_maps",
    ),
    "layers": (
        "SEFI_LEVEL",
        "CrossAttentionLayer",
        "Resolution",
        "block_resolutions",
        "cross_attention_layers",
        "cross_attention_modules",
        "cross_attention_resolutions",
        "latent_size_of",
        "resolution_for",
    ),
    "loss": ("PAPER_WEIGHT", "TokenChoice", "face_attention_loss"),
    "processors": ("CrossAttentionProcessor", "InstalledProcessors", "install"),
    "region_masks": ("RegionMasks", "drawn_in_regions", "soft_mask"),
    "regions": ("FEATHER", "PRESETS", "Region", "check_regions", "parse_region"),
    "store": ("AttentionRecord", "AttentionStore", "LogitBias"),
    "tokens": ("PromptWord", "pipeline_prompt", "prompt_length", "prompt_words", "token_positions"),
}
__all__ = [
    "FEATHER",
    "PAPER_WEIGHT",
    "PRESETS",
    "SEFI_LEVEL",
    "AttentionAverager",
    "AttentionRecord",
    "AttentionStore",
    "CrossAttentionLayer",
    "CrossAttentionProcessor",
    "HeatmapResult",
    "HeatmapSheet",
    "InstalledProcessors",
    "LogitBias",
    "PromptWord",
    "Region",
    "RegionMasks",
    "Resolution",
    "TokenChoice",
    "attention_heatmaps",
    "block_resolutions",
    "check_regions",
    "colormap",
    "cross_attention_layers",
    "cross_attention_modules",
    "cross_attention_resolutions",
    "drawn_in_regions",
    "face_attention_loss",
    "install",
    "latent_size_of",
    "parse_region",
    "pipeline_prompt",
    "prompt_length",
    "prompt_words",
    "render_heatmaps",
    "resolution_for",
    "soft_mask",
    "token_positions",
    "word_maps",
]
__getattr__ = lazy_exports(__name__, {name: module for module, names in _EXPORTS.items() for name in names})
