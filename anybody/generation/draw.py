"""Draw learned people: put identities into a diffusers pipeline, then generate like diffusers does.

`apply(pipe, identities)` writes each identity's token rows into the pipeline's tokenizer and text encoder
(diffusers' multi-vector naming), after which the plain pipeline understands "<alice>". `generate` adds
what a user expects around it: the name as a plain word in the prompt, DDIM by default, seeds that repeat,
PNGs that say how they were made, and a contact sheet. Given a picture (and a mask) or a control image, it
draws with diffusers' inpainting, img2img or ControlNet pipeline made from the same components
(`anybody.generation.control`), so the identities work there unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm

from anybody.attention.region_masks import drawn_in_regions
from anybody.attention.regions import Region, RegionLike, check_regions
from anybody.errors import IdentityError, UsageError
from anybody.face.photo import PhotoSource
from anybody.generation import defaults
from anybody.generation.checks import check_arguments, check_distinct, check_names_used
from anybody.generation.control import drawing_pipeline
from anybody.generation.images import contact_sheet, png_text, save_png
from anybody.generation.inputs import ControlNetSource, DrawInputs, read_inputs
from anybody.generation.stages import StageSwitch
from anybody.identity import Identity, rewrite_prompt, token_strings
from anybody.identity.families import drawing_model, family_of
from anybody.identity.tokens import install_tokens
from anybody.models import describe_model, load_pipeline, model_family, text_encoders
from anybody.storage import make_folder

log = logging.getLogger("anybody")


@dataclass
class GenerationResult:
    images: list[Image.Image]
    seeds: list[int]
    prompt: str
    paths: list[Path] = field(default_factory=list)
    sheet: Path | None = None
    stopped: bool = False  # `on_step` stopped the drawing: the images finished before it


def apply(pipe: DiffusionPipeline, identities: Identity | Sequence[Identity]) -> DiffusionPipeline:
    """Install identities into a diffusers pipeline: afterwards "<name>" in a prompt draws that person.

    Identities with per-stage key/value tokens (SeFi-IDE) also get a `StageSwitch` on the pipeline (hooks
    and attention processors), replacing any installed before; `pipe.anybody_stage_switch.remove()`
    takes it away again.
    """
    identities = [identities] if isinstance(identities, Identity) else list(identities)
    for identity in identities:
        check_fits(identity, pipe)
        for encoder_name, tokenizer, encoder in text_encoders(pipe):
            embeddings = identity.encoder_embeddings[encoder_name]
            install_tokens(tokenizer, encoder, token_strings(identity.name, identity.token_count), embeddings)
    staged = [identity for identity in identities if identity.stages]
    previous = getattr(pipe, "anybody_stage_switch", None)
    if previous is not None:  # identities installed before stay staged, unless installed again now
        previous.remove()
        pipe.anybody_stage_switch = None
        names = {identity.name for identity in identities}
        kept = {i.name: i for i in previous.identities if i.name not in names}
        staged = list({**kept, **{i.name: i for i in staged}}.values())
    if staged:
        if len({identity.stages for identity in staged}) > 1:
            raise IdentityError("These identities were learned with different numbers of stages",
                                "Learn them with the same --stages")
        pipe.anybody_stage_switch = StageSwitch(pipe, staged)
    return pipe


def check_fits(identity: Identity, pipe: DiffusionPipeline) -> None:
    """An IdentityError when the identity was made for another family or text-encoder width.

    Every encoder counts, both ways: an SDXL identity on SD 1.x would find a first encoder of the right
    width (both are CLIP ViT-L) but was learned for another UNet and carries tokens SD 1.x has no place for.
    """
    widths = {name: encoder.get_input_embeddings().weight.shape[1] for name, _, encoder in text_encoders(pipe)}
    for encoder_name in sorted(widths.keys() | identity.encoder_embeddings.keys()):
        width = widths.get(encoder_name)
        embeddings = identity.encoder_embeddings.get(encoder_name)
        if embeddings is None or width is None or embeddings.shape[1] != width:
            made_for = family_of(identity.metadata, identity.widths) or "another model"
            have = "none" if embeddings is None else str(embeddings.shape[1])
            needs = f"needs width {width}" if width is not None else f"has no {encoder_name}"
            own = f"the model it was learned on ({identity.base_model})" if identity.base_model else \
                "a model of its widths (--model)"
            raise IdentityError(
                f"The identity {identity.name!r} was made for {made_for} ({encoder_name} width {have}); this "
                f"{model_family(pipe)} model {needs}", f"Generate with {own}, or learn it again on this one")


def generate(
    prompt: str,
    identities: str | Identity | Sequence[str | Identity] = (),
    model: str | DiffusionPipeline | None = None,
    *,
    image: PhotoSource | None = None,
    mask: PhotoSource | None = None,
    strength: float | None = None,
    control_image: PhotoSource | None = None,
    control_kind: str | None = None,
    controlnet: ControlNetSource | None = None,
    control_scale: float = defaults.CONTROL_SCALE,
    regions: Mapping[str, RegionLike] | None = None,
    num_images_per_prompt: int = defaults.NUM_IMAGES,
    num_inference_steps: int = defaults.STEPS,
    guidance_scale: float = defaults.GUIDANCE,
    seed: int | None = defaults.SEED,
    generator: torch.Generator | list[torch.Generator] | None = None,
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
    scheduler: str = defaults.SCHEDULER,
    out_dir: str | os.PathLike[str] | None = None,
    library: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    batch_size: int = defaults.BATCH_SIZE,
    progress: bool = True,
    on_step: Callable[[int, int, int], bool] | None = None,
) -> GenerationResult:
    """Generate images of learned people. Image i uses seed `seed + i`, so any one can be made again.

    `model` defaults to the model the (first) identity was learned on. With `out_dir`, each image is saved
    as a PNG with its prompt, seed, model and identities in the text chunks, beside a `sheet.png`.
    At most `batch_size` images are drawn at once: more are drawn in turn, each from its own seed, so
    `-n 100` needs no more memory than `-n 4` and gives the same pictures as drawing them one by one.
    `progress` shows a bar over the denoising steps of all the images (on stderr).
    `on_step(image, step, steps)` is called after every denoising step (`image`: the index of the first
    image being drawn; `step` of `steps`, from 1): when it returns True the drawing stops there, the images
    finished before are kept (and saved) and `result.stopped` is set; `batch_size=1` keeps every one.

    Into a picture: `image` (a path, bytes, PIL image or array) with a `mask` (white = redraw) is
    inpainting, and every pixel the mask leaves black is the picture's own; `image` alone is img2img, and
    `strength` (0 to 1, by default 1 with a mask and 0.75 without) is how much of it is drawn anew. In a
    pose: `control_image` steered by `controlnet` (a Hub id, folder, single file, a `ControlNetModel`, or
    "tiny" for a tiny model) with weight `control_scale`; `control_kind="canny"` makes the control image from
    the photo `control_image` (its edges). Both combine. The PNGs record each file by name and SHA-256.

    Each person in a place: `regions` maps an identity's name to where it is drawn ("left", "right", "top",
    "bottom", "center", or a box of fractions "x0,y0,x1,y1" / four numbers): its tokens then act only inside
    it, with a soft edge, while the rest of the prompt acts everywhere (`anybody.attention.region_masks`).
    """
    check_arguments(prompt, num_images_per_prompt, num_inference_steps, guidance_scale, height, width,
                    negative_prompt, batch_size)
    inputs = read_inputs(image, mask, strength, control_image, control_kind, controlnet, control_scale,
                         num_inference_steps)
    for note in inputs.notes:
        log.warning(note)
    loaded = _load_identities(identities, library)
    placed = check_regions(regions, [identity.name for identity in loaded])
    folder = make_folder(out_dir) if out_dir is not None else None  # a bad --out fails now, not after drawing
    pipe = _ready_pipeline(prompt, loaded, model, device, dtype, scheduler, num_inference_steps)
    drawer, drawing = drawing_pipeline(pipe, inputs, height, width)
    names = [identity.name for identity in loaded]
    model_prompt = rewrite_prompt(prompt, names)
    model_negative = rewrite_prompt(negative_prompt, names) if negative_prompt else None
    _check_length(pipe, prompt, loaded)

    seeds = [(seed if seed is not None else 0) + index for index in range(num_images_per_prompt)]
    if generator is None:
        generator = [torch.Generator(device="cpu").manual_seed(value) for value in seeds]
    images: list[Image.Image] = []
    batches = range(0, num_images_per_prompt, batch_size)
    plural = "s" if num_images_per_prompt > 1 else ""
    with tqdm(total=len(batches) * num_inference_steps, desc=f"Drawing {num_images_per_prompt} image{plural}",
              unit="step", disable=not progress) as bar, \
            drawn_in_regions(drawer, model_prompt, _tokens_placed(loaded, placed), guidance_scale):
        for start in batches:
            count = min(batch_size, num_images_per_prompt - start)
            if len(batches) > 1:
                bar.set_postfix_str(f"images {start + 1}-{start + count}")
            drawn = drawer(
                prompt=model_prompt,
                negative_prompt=model_negative,
                num_images_per_prompt=count,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                generator=generator[start : start + count] if isinstance(generator, list) else generator,
                callback_on_step_end=_count_steps(bar, len(batches), on_step, start),
                **drawing,
            ).images
            if drawer.interrupt:  # on_step stopped it: the images of this batch are not finished
                break
            images += drawn
    result = GenerationResult(images=images, seeds=seeds[: len(images)], prompt=prompt,
                              stopped=len(images) < num_images_per_prompt)
    if folder is not None and images:
        _save(result, folder, negative_prompt, num_inference_steps, guidance_scale, describe_model(pipe),
              names, type(pipe.scheduler).__name__, inputs, placed)
    return result


def attention_map(
    prompt: str,
    identities: str | Identity | Sequence[str | Identity] = (),
    model: str | DiffusionPipeline | None = None,
    *,
    out: str | os.PathLike[str] = defaults.ATTENTION_OUT,
    seed: int = defaults.SEED,
    num_inference_steps: int = defaults.STEPS,
    guidance_scale: float = defaults.GUIDANCE,
    level: int = defaults.ATTENTION_LEVEL,
    regions: Mapping[str, RegionLike] | None = None,
    library: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> Path:
    """One picture, and for every word of the prompt where its cross-attention went (SeFi-IDE's Figure 1).

    The maps are averaged over heads, layers and denoising steps of one cross-attention level. It is how a
    user sees attention overfit: an identity whose map covers the whole picture crowds out the other words.
    With `regions` (as `generate` takes them) the picture is drawn with them, and each identity's map shows
    its region outlined.
    """
    from anybody.attention import RegionMasks, attention_heatmaps

    check_arguments(prompt, 1, num_inference_steps, guidance_scale, None, None)
    loaded = _load_identities(identities, library)
    placed = check_regions(regions, [identity.name for identity in loaded])
    pipe = _ready_pipeline(prompt, loaded, model, device, dtype, "ddim", num_inference_steps)
    model_prompt = rewrite_prompt(prompt, [identity.name for identity in loaded])
    masks = RegionMasks.for_prompt(pipe, model_prompt, _tokens_placed(loaded, placed), guidance_scale) \
        if placed else None
    attention_heatmaps(pipe, model_prompt, out, level=level, regions=masks,
                       num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                       generator=torch.Generator(device="cpu").manual_seed(seed))
    return Path(out)


def _tokens_placed(identities: list[Identity], placed: dict[str, Region]) -> dict[tuple[str, ...], Region]:
    """Each placed identity's token strings ("<alice>", "<alice>_1") and its region."""
    return {tuple(token_strings(identity.name, identity.token_count)): placed[identity.name]
            for identity in identities if identity.name in placed}


def _ready_pipeline(prompt: str, loaded: list[Identity], model: str | DiffusionPipeline | None, device: str | None,
                    dtype: str | torch.dtype | None, scheduler: str, steps: int) -> DiffusionPipeline:
    """The pipeline to draw with (by default the one the identities say: `families.drawing_model`), the
    identities installed, the scheduler chosen; the prompt is checked against them first."""
    check_names_used(prompt, [identity.name for identity in loaded])
    if model is None and loaded:
        model = drawing_model([(identity.name, identity.metadata, identity.widths) for identity in loaded])
    pipe = model if isinstance(model, DiffusionPipeline) else load_pipeline(model, device=device, dtype=dtype)
    apply(pipe, loaded)
    if scheduler == "ddim" and not isinstance(pipe.scheduler, DDIMScheduler):
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    _check_steps(pipe, steps)
    return pipe


def _load_identities(identities: str | Identity | Sequence[str | Identity],
                     library: str | os.PathLike[str] | None) -> list[Identity]:
    if isinstance(identities, (str, Identity)):
        identities = [identities]
    loaded = [item if isinstance(item, Identity) else Identity.load(item, library) for item in identities]
    check_distinct([identity.name for identity in loaded])
    return loaded


def _check_steps(pipe: DiffusionPipeline, steps: int) -> None:
    """A scheduler cannot take more steps than the timesteps the model was trained on (1000 for SD)."""
    limit = int(pipe.scheduler.config.get("num_train_timesteps", 1000))
    if steps > limit:
        raise UsageError(f"The number of steps can be at most {limit} for this model (got {steps}): its "
                         f"scheduler knows {limit} timesteps", "Pass --steps 50, for example")


def _check_length(pipe: DiffusionPipeline, prompt: str, identities: list[Identity]) -> None:
    """Say so when the prompt (identities expanded to their tokens) is longer than the encoder reads."""
    expanded = rewrite_prompt(prompt, [i.name for i in identities], {i.name: i.token_count for i in identities})
    tokenizer = pipe.tokenizer
    count = len(tokenizer(expanded, add_special_tokens=True).input_ids)
    if count > tokenizer.model_max_length:
        log.warning(
            "The prompt is %d tokens long; the text encoder reads only the first %d, so the end is cut off "
            "(shorten the prompt to keep it).", count, tokenizer.model_max_length)


def _count_steps(bar: tqdm, batches: int, on_step: Callable[[int, int, int], bool] | None = None,
                 first: int = 0):
    """A diffusers `callback_on_step_end` that moves the bar one denoising step. The scheduler may take a
    step more than asked (PNDM does), and img2img and inpainting take only `strength` of them, so the total
    is set from the steps the pipeline runs once they are known.
    `on_step` is generate's (told `first`, the batch's first image); True from it is diffusers' own way out."""

    def on_step_end(pipe: DiffusionPipeline, step: int, timestep, callback_kwargs: dict) -> dict:
        if step == 0 and bar.total != batches * pipe.num_timesteps:
            bar.total = batches * pipe.num_timesteps
            bar.refresh()
        bar.update(1)
        if on_step is not None and on_step(first, step + 1, pipe.num_timesteps):
            pipe._interrupt = True  # the pipeline skips the remaining steps; generate drops the batch
        return callback_kwargs

    return on_step_end


def _save(result: GenerationResult, folder: Path, negative_prompt: str | None, steps: int, guidance: float,
          model: str, names: list[str], scheduler: str, inputs: DrawInputs, placed: dict[str, Region]) -> None:
    record = inputs.record()
    if placed:
        record["regions"] = {name: str(region) for name, region in placed.items()}
    for index, (image, image_seed) in enumerate(zip(result.images, result.seeds)):
        path = folder / f"{index:02d}-seed{image_seed}.png"
        text = png_text(result.prompt, negative_prompt, image_seed, steps, guidance, image.size, model, names,
                        scheduler, record)
        result.paths.append(save_png(image, path, text))
    if inputs.control_kind:  # the control image made from a photo: what the ControlNet was shown
        save_png(inputs.control_image, folder / "control.png", {"anybody": json.dumps(record)})
    sheet = contact_sheet(result.images, [f"seed {s}" for s in result.seeds], title=result.prompt)
    result.sheet = save_png(sheet, folder / "sheet.png", {"prompt": result.prompt, "model": model})
