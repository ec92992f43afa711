"""Face swap: a learned person's face drawn into a photo, in place of a face there.

anybody's face detector finds the faces (`face` picks one as `learn` does, or "all"). Each face gets a
region that covers the face and the hair: an ellipse sized from the detector's box, turned with the line of
the eyes, whose outer edge fades out (feathered). That region is redrawn with the identity through
`generate`'s inpainting (only the region's box, with a margin, is drawn, at the model's resolution, and
pasted back through the feathered mask), so every pixel outside the region is the photo's own, at the
photo's size. The face drawn is then scored by the face recognizer the identity was learned with, against
the identity's reference descriptor, and the score goes into the PNG's text chunks.

Everything before the drawing (the photo, the faces, the settings) is checked without torch, so a photo
without a face or a face number out of range is refused at once and nothing is written.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image

from anybody.errors import AnybodyError, UsageError
from anybody.face.detection import MIN_FACE_SIZE, Face, choose_face, find_faces
from anybody.face.photo import PhotoSource
from anybody.generation import defaults
from anybody.generation.checks import check_arguments, check_names_used
from anybody.generation.inputs import DrawInputs, read_inputs

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

    from anybody.face.encoders import FaceEncoder
    from anybody.identity import Identity

SWAP_STRENGTH = defaults.SWAP_STRENGTH
SWAP_PROMPT = defaults.SWAP_PROMPT

# The face-and-hair region, in sides of the detector's face box (which runs from the brows to the chin):
REGION_WIDTH = 1.6  # cheek to cheek, with the hair at the sides
REGION_HEIGHT = 1.9  # from the top of the hair to below the chin
REGION_RAISE = 0.25  # the region's centre lies this far above the box's centre (the hair is above the face)
REGION_FEATHER = 0.15  # the soft outer edge, over which the drawn face fades into the photo

FaceChoice = int | Literal["all"] | None


@dataclass(frozen=True)
class FaceScore:
    """How much the face drawn looks like the identity, by the face recognizer it was learned with.

    `similarity`: cosine of the two descriptors (the evaluation's "ID similarity"); `distance`: their
    Euclidean distance, the recognizer's own measure, and `same_person` whether it is under the
    recognizer's threshold. `located`: "found" when the detector found the face in the result, else
    "photo's landmarks" (the face is read where the photo's face was)."""

    similarity: float
    distance: float
    same_person: bool
    recognizer: str
    located: str


@dataclass
class SwappedFace:
    index: int  # the face's number, as --face takes it (0 = the largest)
    box: tuple[int, int, int, int]  # the detector's box in the photo (left, top, right, bottom)
    region: tuple[int, int, int, int]  # the box of the region redrawn (everything outside it is the photo's own)
    score: FaceScore | None = None


@dataclass
class SwapResult:
    image: Image.Image
    faces: list[SwappedFace]
    prompt: str
    identity: str
    unscored: str | None = None  # why no score, when the identity has no reference face to compare with
    path: Path | None = None
    details: dict[str, object] = field(default_factory=dict)  # what the PNG's `anybody` chunk says


def parse_face_choice(text: str | None) -> FaceChoice:
    """--face: a face number (0 = the largest) or "all"; None when not given (the largest face)."""
    if text is None:
        return None
    if text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--face {text!r} is neither a face number nor 'all'",
                         "Pass --face 0 for the largest face, --face 1 for the next, or --face all") from None


def chosen_faces(faces: list[Face], choice: FaceChoice) -> list[int]:
    """The indices of the faces to swap; the detector's refusals (no face, a number out of range, a face too
    small) as `choose_face` words them. With "all", faces under the minimum size are left as they are."""
    if choice != "all":
        return [faces.index(choose_face(faces, choice))]
    usable = [index for index, face in enumerate(faces) if face.size >= MIN_FACE_SIZE]
    return usable or [faces.index(choose_face(faces, 0))]  # none usable: choose_face says why


def face_region(face: Face, size: tuple[int, int]) -> Image.Image:
    """The feathered face-and-hair mask of one face, as an "L" image of the photo's `size` (white = redraw).

    An ellipse REGION_WIDTH x REGION_HEIGHT face boxes, centred REGION_RAISE above the box and turned with
    the eyes' line; it is white inside, fading to black over REGION_FEATHER box sides towards its edge, and
    black (exactly 0) on and beyond the edge.
    """
    side = float(face.size)
    left_eye, right_eye = face.eye_centres
    angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    across, down = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
    box_left, box_top, box_right, box_bottom = face.box
    centre = np.array([(box_left + box_right) / 2, (box_top + box_bottom) / 2]) - down * REGION_RAISE * side
    half_width, half_height = REGION_WIDTH * side / 2, REGION_HEIGHT * side / 2
    reach = max(half_width, half_height)
    left, top = max(0, math.floor(centre[0] - reach)), max(0, math.floor(centre[1] - reach))
    right, bottom = min(size[0], math.ceil(centre[0] + reach) + 1), min(size[1], math.ceil(centre[1] + reach) + 1)
    mask = Image.new("L", size, 0)
    if right <= left or bottom <= top:
        return mask
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float64)
    dx, dy = xs - centre[0], ys - centre[1]
    radius = np.hypot((dx * across[0] + dy * across[1]) / half_width, (dx * down[0] + dy * down[1]) / half_height)
    # 1 - radius is about the distance to the edge in units of the nearer half-axis: ramp over the feather.
    inside = np.clip((1.0 - radius) * min(half_width, half_height) / (REGION_FEATHER * side), 0.0, 1.0)
    mask.paste(Image.fromarray(np.round(inside * 255).astype(np.uint8), "L"), (left, top))
    return mask


def swap(
    photo: PhotoSource,
    identity: str | os.PathLike[str] | Identity,
    model: str | DiffusionPipeline | None = None,
    *,
    face: FaceChoice = None,
    prompt: str | None = None,
    strength: float = SWAP_STRENGTH,
    negative_prompt: str | None = None,
    num_inference_steps: int = defaults.STEPS,
    guidance_scale: float = defaults.GUIDANCE,
    seed: int = defaults.SEED,
    detector: str = "hog",
    out: str | os.PathLike[str] | None = None,
    library: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    progress: bool = True,
    on_step: Callable[[int, int, int, int], None] | None = None,
) -> SwapResult:
    """Draw the identity's face in place of a face of `photo` (`face`: its number, 0 the largest, or "all").

    The photo, its faces and the settings are checked first (a one-line `AnybodyError`, nothing written);
    then each face's feathered face-and-hair region is inpainted with the identity (`prompt`, by default
    "a photo of NAME"; `strength` of the region drawn anew; face k with seed `seed + k`). Outside the regions
    the result is the photo, pixel for pixel, at its size. Each face drawn is scored against the identity's
    reference descriptor; with `out`, the result is written there as a PNG whose text chunks hold the
    prompt, settings, faces and scores. `on_step(face, faces, step, steps)` is called after every denoising
    step (`face`: the order of the face being drawn, from 0, of `faces`), e.g. for a progress bar.
    """
    inputs = _checked(photo, strength, num_inference_steps, guidance_scale, prompt, negative_prompt)
    faces = find_faces(inputs.image, detector=detector)
    indices = chosen_faces(faces, face)
    identity = _load(identity, library)
    prompt = prompt or SWAP_PROMPT.format(identity.name)
    check_names_used(prompt, [identity.name])
    recognizer, unscored = _recognizer(identity)
    pipe = _pipeline(identity, model, device, dtype)

    from anybody.generation.draw import generate

    image = inputs.image
    swapped = []
    for order, index in enumerate(indices):
        mask = face_region(faces[index], image.size)
        image = generate(prompt, identity, pipe, image=image, mask=mask, strength=inputs.strength,
                         negative_prompt=negative_prompt, num_images_per_prompt=1,
                         num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed + order,
                         progress=progress, on_step=_face_steps(on_step, order, len(indices))).images[0]
        swapped.append(SwappedFace(index, faces[index].box, mask.getbbox()))
    for done in swapped:
        done.score = score_face(image, faces[done.index], done.region, identity, recognizer) if recognizer else None
    result = SwapResult(image, swapped, prompt, identity.name, unscored)
    result.details = _details(result, inputs, pipe, negative_prompt, num_inference_steps, guidance_scale, seed,
                              detector)
    if out is not None:
        result.path = _save(result, Path(out), negative_prompt, num_inference_steps, guidance_scale, seed, pipe,
                            inputs)
    return result


def _face_steps(on_step: Callable[[int, int, int, int], None] | None, order: int,
                faces: int) -> Callable[[int, int, int], bool] | None:
    """generate's `on_step` for the face drawn `order`-th of `faces`: reports to swap's, never stops drawing."""
    if on_step is None:
        return None

    def report(image: int, step: int, steps: int) -> bool:
        on_step(order, faces, step, steps)
        return False

    return report


def default_out(photo: str | os.PathLike[str], name: str) -> Path:
    """Where `anybody swap` writes without --out: beside the other outputs, named for photo and person."""
    return Path("anybody-output") / f"{Path(photo).stem}-{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"


def _checked(photo: PhotoSource, strength: float, steps: int, guidance: float, prompt: str | None,
             negative_prompt: str | None) -> DrawInputs:
    """The photo read (upright RGB, its name and SHA-256 kept) and the numbers checked, as generate checks them."""
    check_arguments(prompt if prompt is not None else SWAP_PROMPT, 1, steps, guidance, None, None, negative_prompt)
    return read_inputs(image=photo, strength=strength, steps=steps)


def _load(identity: str | os.PathLike[str] | Identity, library: str | os.PathLike[str] | None) -> Identity:
    from anybody.identity import Identity

    return identity if isinstance(identity, Identity) else Identity.load(identity, library)


def _pipeline(identity: Identity, model: str | DiffusionPipeline | None, device: str | None,
              dtype: str | torch.dtype | None) -> DiffusionPipeline:
    """The pipeline that draws every face: loaded once (by default the model the identity names)."""
    from diffusers import DiffusionPipeline

    from anybody.identity.families import drawing_model
    from anybody.models import load_pipeline

    if isinstance(model, DiffusionPipeline):
        return model
    model = model or drawing_model([(identity.name, identity.metadata, identity.widths)])
    return load_pipeline(model, device=device, dtype=dtype)


def _recognizer(identity: Identity) -> tuple[FaceEncoder | None, str | None]:
    """The face recognizer the identity's reference descriptor was made with, or why there is none."""
    from anybody.face.encoders import get_face_encoder

    if identity.face_descriptor is None:
        return None, f"{identity.name} has no reference face to compare with (it was imported or mixed)"
    training = identity.metadata.get("training")
    spec = str(training.get("face_encoder", "dlib")) if isinstance(training, dict) else "dlib"
    try:
        recognizer = get_face_encoder(spec)
    except AnybodyError as error:
        return None, f"the face recognizer {identity.name} was learned with cannot be used here ({error.problem})"
    if recognizer.dim != identity.face_descriptor.shape[0]:
        return None, (f"{identity.name}'s reference face has {identity.face_descriptor.shape[0]} features, the "
                      f"recognizer {recognizer.name} {recognizer.dim}")
    return recognizer, None


def score_face(image: Image.Image, before: Face, region: tuple[int, int, int, int], identity: Identity,
           recognizer: FaceEncoder) -> FaceScore:
    """The face drawn in `region`, read by the recognizer and compared with the identity's reference: the face
    the detector finds there (the one over the photo's face), else the photo's face's own landmarks."""
    left, top = region[:2]
    found = [face for face in find_faces(image.crop(region))
             if before.box[0] <= left + (face.box[0] + face.box[2]) / 2 <= before.box[2]
             and before.box[1] <= top + (face.box[1] + face.box[3]) / 2 <= before.box[3]]
    if found:
        crop, located = recognizer.crop(image.crop(region), found[0]), "found"
    else:
        crop, located = recognizer.crop(image, before), "photo's landmarks"
    drawn = recognizer.encode([crop])[0].astype(np.float64)
    reference = identity.face_descriptor.numpy().astype(np.float64)
    distance = float(np.linalg.norm(drawn - reference))
    norms = float(np.linalg.norm(drawn) * np.linalg.norm(reference))
    return FaceScore(similarity=float(drawn @ reference / norms) if norms else 0.0, distance=distance,
                     same_person=distance < recognizer.same_person_distance, recognizer=recognizer.name,
                     located=located)


def _details(result: SwapResult, inputs: DrawInputs, pipe: DiffusionPipeline, negative_prompt: str | None,
             steps: int, guidance: float, seed: int, detector: str) -> dict[str, object]:
    """The swap as the PNG's `anybody` chunk records it (with the picture and strength of `inputs`)."""
    faces = [{"face": done.index, "box": list(done.box), "region": list(done.region), "seed": seed + order,
              "score": asdict(done.score) if done.score else None} for order, done in enumerate(result.faces)]
    record: dict[str, object] = {**inputs.record(), "swap": {"faces": faces, "detector": detector}}
    if result.unscored:
        record["swap"]["unscored"] = result.unscored  # type: ignore[index]
    return record


def _save(result: SwapResult, path: Path, negative_prompt: str | None, steps: int, guidance: float, seed: int,
          pipe: DiffusionPipeline, inputs: DrawInputs) -> Path:
    from anybody.generation.images import png_text, save_png
    from anybody.models import describe_model
    from anybody.storage import make_folder

    make_folder(path.parent)
    text = png_text(result.prompt, negative_prompt, seed, steps, guidance, result.image.size, describe_model(pipe),
                    [result.identity], type(pipe.scheduler).__name__, result.details)
    scores = [done.score for done in result.faces if done.score is not None]
    if scores:  # one plain chunk for scripts: the similarity of each face swapped
        text["id_similarity"] = ", ".join(f"{score.similarity:.4f}" for score in scores)
    return save_png(result.image, path, text)


def describe_scores(result: SwapResult) -> list[str]:
    """One line per face swapped: its number, and how much it now looks like the identity."""
    lines = []
    for done in result.faces:
        if done.score is None:
            lines.append(f"Face {done.index}: not scored: {result.unscored}")
            continue
        score = done.score
        verdict = "the same person" if score.same_person else "not the same person"
        lines.append(f"Face {done.index}: ID similarity {score.similarity:.3f} with {result.identity} (distance "
                     f"{score.distance:.3f} by {score.recognizer}: {verdict}; face {score.located})")
    return lines

