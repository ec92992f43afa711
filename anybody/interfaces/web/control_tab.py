"""The page's control parts: the Draw tab's "Scene and control" (a scene photo with a mask painted on it by
brush, a control image and its ControlNet, a place for each identity) and the Swap tab (a photo's faces
numbered, one or all of them swapped for an identity, the result scored and downloadable).

The scene is Gradio's ImageEditor: its background is the scene photo, and what is painted on it (in any
layer) is the mask, white where there is paint; nothing painted redraws the whole photo by Strength
(img2img). Through the API the editor's value is a dict of files, {"background": photo, "layers": [mask]}: a
layer without transparency counts as a black-and-white mask (white = redraw), so a mask made elsewhere
works too. Every value goes to `Studio.draw` / `Studio.swap`, which check it whoever sent it.

Import this module only after `server.go_offline()`: Gradio reads its settings from the environment.
"""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, UnidentifiedImageError

from anybody.errors import UsageError
from anybody.face.photo import MAX_PIXELS
from anybody.generation import defaults
from anybody.generation.swap import SWAP_STRENGTH, describe_scores
from anybody.interfaces.web import limits
from anybody.interfaces.web.parts import (
    CLOSE_MESSAGES,
    MODEL_JOB,
    PRIVATE,
    PageEvents,
    empty_state,
    number_field,
    photo_input,
    shown_to_user,
)
from anybody.interfaces.web.studio import ALL_FACES, AS_GIVEN, TINY_CONTROLNET, Studio

PAINT = ("rgb(255, 64, 160)", 0.6)  # the brush: a colour no photo is full of, see-through so the photo shows
MASK_FILE = "painted-mask.png"  # the mask made from the paint, as the PNGs record it
UNREADABLE = "unreadable"  # the editor's value when the browser's pictures could not be read
CONTROL_KIND_CHOICES = [("the ControlNet's input, as given", AS_GIVEN), ("a photo: use its edges (Canny)", "canny")]
NO_SWAP = empty_state("1. Upload a photo (or take one with the webcam): its faces are numbered below.",
                      "2. Pick the face (or all faces) and the identity to draw there.", "3. Press Swap.")
# The place of each identity lives in the browser until Draw sends it: a pick is never lost to a late reply.
SET_PLACE = "(place, places) => ({{...(places || {{}}), {name}: place}})"
KEEP_PLACES_OF_CHOSEN = """(chosen, places) => Object.fromEntries(
  Object.entries(places || {}).filter(([name]) => (chosen || []).includes(name)))"""


@dataclass(frozen=True)
class SceneAndControl:
    """The Draw tab's inputs beyond the prompt, in the order `Events.draw` takes them."""

    scene: gr.ImageEditor
    strength: gr.Number
    control: gr.Image
    control_kind: gr.Radio
    controlnet: gr.Dropdown
    control_scale: gr.Number
    places: gr.JSON

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [self.scene, self.strength, self.control, self.control_kind, self.controlnet, self.control_scale,
                self.places]


def scene_editor(**options: Any) -> gr.ImageEditor:
    """Gradio's ImageEditor as a scene and its mask: one see-through brush and its eraser, no crop or resize
    (the scene keeps its size, so the drawing pastes back pixel for pixel), PNG (lossless). Uploaded files
    are handed over as they came (anybody reads them, with its own messages); the pictures the browser sends
    after painting are read by Gradio, and a value it cannot read is handed over as UNREADABLE."""
    editor = gr.ImageEditor(type="filepath", format="png", image_mode="RGBA", layers=False, transforms=(),
                            brush=gr.Brush(colors=[PAINT], default_color=PAINT, color_mode="fixed"), **options)
    read_by_gradio = editor.preprocess

    def as_uploaded(payload: Any) -> Any:
        if payload is None or payload.id is not None:  # the browser's own PNGs, sent after painting
            try:
                return read_by_gradio(payload)
            except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
                return UNREADABLE
        return {"background": payload.background.path if payload.background else None,
                "layers": [layer.path for layer in payload.layers], "composite": None}

    editor.preprocess = as_uploaded
    return editor


def scene_and_control(studio: Studio, identities: gr.Dropdown) -> SceneAndControl:
    """The "Scene and control" accordion (closed: a plain drawing needs none of it), under the Draw tab's
    settings; a place for each identity chosen in `identities`."""
    choices = studio.controlnet_choices()
    offered = "tiny: random weights, for the built-in models" if choices == [TINY_CONTROLNET] else (
        "those this app was started with or found on this machine" if choices else
        "none: whoever starts the app can add one (anybody ui --controlnet ID_OR_FOLDER)")
    with gr.Accordion("Scene and control: into a photo, in a pose, each person in a place", open=False,
                      elem_id="scene-box"):
        scene = scene_editor(label="Scene photo: paint where to draw",
                             placeholder="Upload the scene photo (or paste it, or take it with the webcam), then "
                                         "paint where to draw with the brush",
                             elem_id="scene", sources=["upload", "webcam", "clipboard"], height=380)
        strength = number_field(limits.STRENGTH, defaults.IMG2IMG_STRENGTH, "strength",
                                info="how much of the painted part is drawn anew (1: from noise); with no "
                                     "paint, of the whole photo (0.3 keeps most of it)")
        with gr.Row(equal_height=False):
            control = photo_input(label="Control image", elem_id="control",
                                  sources=["upload", "clipboard"], height=220, format="png")
            with gr.Column(min_width=200):
                controlnet = gr.Dropdown([(name, name) for name in choices], value=choices[0] if choices else None,
                                         label="ControlNet", elem_id="controlnet", info=offered)
                control_kind = gr.Radio(CONTROL_KIND_CHOICES, value=AS_GIVEN, label="Control image kind",
                                        elem_id="control-kind")
                control_scale = number_field(limits.CONTROL_SCALE, defaults.CONTROL_SCALE, "control-scale",
                                             info="0 to 2: how strongly it steers")
        places = gr.JSON({}, visible=False, elem_id="places")

        @gr.render(inputs=[identities, places], triggers=[identities.change])
        def place_each(chosen: list[str] | None, placed: dict | None) -> None:
            if not chosen:
                gr.HTML(empty_state("Places: choose identities above, then a place for each (left, right, …)."))
                return
            with gr.Row(elem_classes="places"):
                for name in chosen:
                    place = gr.Dropdown(list(limits.PLACES), value=(placed or {}).get(name, limits.ANYWHERE),
                                        label=f"Place of {name}", allow_custom_value=True, interactive=True,
                                        key=f"place-{name}", elem_id=f"place-{name}", min_width=160,
                                        info="or a box x0,y0,x1,y1 (fractions)")
                    place.change(None, js=SET_PLACE.format(name=json.dumps(name)), inputs=[place, places],
                                 outputs=places, **PRIVATE)

    identities.change(None, js=KEEP_PLACES_OF_CHOSEN, inputs=[identities, places], outputs=places, **PRIVATE)
    return SceneAndControl(scene, strength, control, control_kind, controlnet, control_scale, places)


def drawing_inputs(studio: Studio, scene: Any, strength: float | None, control: str | None, control_kind: str,
                   controlnet: str | None, control_scale: float, places: dict | None) -> dict[str, Any]:
    """`Studio.draw`'s arguments for the scene and control parts (the studio checks them all)."""
    scene_file, mask_file = scene_files(scene, studio)
    return {"scene": scene_file, "mask": mask_file, "strength": strength, "control": control or None,
            "control_kind": control_kind, "controlnet": controlnet or None, "control_scale": control_scale,
            "places": places}


def scene_files(value: Any, studio: Studio) -> tuple[str | None, str | None]:
    """The scene photo the editor holds and the mask painted on it, as files (the mask written to a folder of
    `studio.work`): (None, None) without a photo, the mask None when nothing is painted."""
    if value == UNREADABLE:
        raise UsageError("The scene photo could not be read", "Upload it again (a JPEG, PNG or WebP photo)")
    if not value:
        return None, None
    if not isinstance(value, dict) or not isinstance(value.get("layers") or [], list):
        raise UsageError("The scene must be a photo and the layers painted on it",
                         'Send {"background": photo, "layers": [mask]}')
    background = value.get("background") or None
    mask = painted_mask(value.get("layers") or [], studio)
    if mask is None:
        return background, None
    if background is not None and mask.getextrema()[0] == 255:
        raise UsageError("The paint covers the whole scene photo: nothing of it would be kept",
                         "Erase the paint where the photo must stay (with no paint at all, the whole photo is "
                         "redrawn by Strength)")
    folder = Path(tempfile.mkdtemp(prefix="mask-", dir=studio.work))
    mask.save(folder / MASK_FILE)
    return background, str(folder / MASK_FILE)


def painted_mask(layers: list[Any], studio: Studio) -> Image.Image | None:
    """White where any layer has paint (its alpha), or, for a layer without transparency, the layer as a
    black-and-white mask; None when nothing is painted."""
    mask: np.ndarray | None = None
    for index, layer in enumerate(layers):
        label = f"painted layer {index + 1}"
        path = limits.check_upload(layer, label, studio.max_upload_mb)
        try:
            with Image.open(path) as picture:
                if picture.width * picture.height > MAX_PIXELS:
                    raise UsageError(f"The {label} is {picture.width} x {picture.height} px, more than a scene "
                                     "photo can be", "Paint on a smaller photo")
                see_through = "A" in picture.getbands() or "transparency" in picture.info
                paint = (np.asarray(picture.convert("RGBA").getchannel("A")) > 0) * np.uint8(255) if see_through \
                    else np.asarray(picture.convert("L"))
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
            raise UsageError(f"The {label} is not an image", "Paint on the scene photo again") from None
        if mask is not None and paint.shape != mask.shape:
            raise UsageError(f"The {label} has another size than the others", "Paint on the scene photo again")
        mask = paint if mask is None else np.maximum(mask, paint)
    if mask is None or not mask.any():
        return None
    return Image.fromarray(mask, "L")


class SwapEvents:
    """What the Swap tab's events do: one call of the studio each, its errors shown as the page's others."""

    def __init__(self, events: PageEvents, studio: Studio) -> None:
        self.events, self.studio = events, studio

    def in_page_words(self, problem: Any) -> str:
        return self.events.in_page_words(problem)

    @shown_to_user("Photo")
    def faces(self, photo: str | None) -> tuple:
        """The photo with every face numbered, and the faces to choose from (all of them, or one)."""
        if not photo:
            return None, gr.update(choices=[], value=None)
        annotated, sizes = self.studio.faces_to_swap(photo)
        choices = [(f"{index}: {size} px{' (largest)' if index == 0 else ''}", index)
                   for index, size in enumerate(sizes)]
        everyone = [(f"all {len(sizes)} faces", ALL_FACES)] if len(sizes) > 1 else []
        return annotated, gr.update(choices=choices + everyone, value=0, interactive=len(sizes) > 1)

    def identities(self, chosen: str | None) -> dict:
        """The identities that can be drawn with the app's model, the chosen one kept if it still is."""
        drawable = [entry.name for entry in self.studio.entries() if not entry.note]
        return gr.update(choices=drawable, value=chosen if chosen in drawable else None)

    @shown_to_user("Not swapped")
    def swap(self, photo: str | None, face: int | str | None, identity: str | None, prompt: str,
             strength: float, steps: int, seed: int,
             progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008 (Gradio's way)
        """Draw the identity's face in place of the chosen face(s); the result, its score and its PNG."""
        if not photo:
            raise UsageError("No photo was given", "Upload a photo or take one with the webcam")
        if not identity:
            raise UsageError("No identity is chosen", "Choose one in Identity")

        def on_step(face: int, faces: int, step: int, steps_in_all: int) -> None:
            progress((face * steps_in_all + step, faces * steps_in_all), unit="steps",
                     desc=f"face {face + 1} of {faces} · step {step} of {steps_in_all}")

        result = self.studio.swap(photo, identity, face=face, prompt=prompt, strength=strength, steps=steps,
                                  seed=seed, on_step=on_step)
        lines = [*describe_scores(result), f"Saved as {result.path.name} (prompt, settings and score in its text "
                                           "chunks)."]
        score = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
        return str(result.path), score, gr.update(value=str(result.path), visible=True)


def swap_tab(events: PageEvents, studio: Studio) -> None:
    """Photo (upload or webcam), the face and the identity on the left, Swap under them, then an optional prompt
    and the settings; what to do (then the score), the faces found, the result and its PNG on the right. Its
    identities are the library's, listed again whenever the tab is shown."""
    swapping = SwapEvents(events, studio)
    with gr.Tab("Swap", id="swap", elem_id="tab-swap") as tab, gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=360):
            photo = photo_input(label="Photo", elem_id="swap-photo", sources=["upload", "webcam"], height=280,
                                format="png")
            with gr.Row(equal_height=True):
                face = gr.Dropdown(label=limits.FACE_TO_SWAP.label, elem_id="swap-face", choices=[],
                                   interactive=False, allow_custom_value=True, min_width=160,
                                   info="0 is the largest (numbered on the right)")
                identity = gr.Dropdown(label="Identity", elem_id="swap-identity", allow_custom_value=True,
                                       min_width=160, info="who is drawn in that face's place")
            swap_button = gr.Button("Swap", variant="primary", elem_id="swap")
            prompt = gr.Textbox("", label="Prompt", elem_id="swap-prompt", placeholder="a photo of NAME (the default)",
                                info="optional: say more (the identity's name as a word in it)")
            with gr.Row():
                strength = number_field(limits.STRENGTH, SWAP_STRENGTH, "swap-strength", min_width=100)
                steps = number_field(limits.DRAW_STEPS, defaults.STEPS, "swap-steps", min_width=100)
                seed = number_field(limits.SEED, defaults.SEED, "swap-seed", min_width=100,
                                    info="face k: seed + k")
        with gr.Column(scale=1, min_width=360):
            score = gr.HTML(NO_SWAP, elem_id="swap-score")
            with gr.Row():
                faces = gr.Image(label="Faces found", elem_id="swap-faces", interactive=False, format="png",
                                 height=320)
                swapped = gr.Image(label="Swapped", elem_id="swapped", interactive=False, format="png", height=320)
            file = gr.File(label="PNG (prompt, settings and score in its text chunks)", elem_id="swap-file",
                           interactive=False, visible=False)

    photo.input(None, js=f"() => {{ ({CLOSE_MESSAGES})(); return [null, null]; }}", outputs=[faces, face], **PRIVATE)
    photo.upload(swapping.faces, inputs=photo, outputs=[faces, face], api_name="swap_faces", concurrency_id="faces")
    tab.select(swapping.identities, inputs=identity, outputs=identity, **PRIVATE)
    swap_button.click(None, js=CLOSE_MESSAGES, **PRIVATE)
    swap_button.click(swapping.swap, inputs=[photo, face, identity, prompt, strength, steps, seed],
                      outputs=[swapped, score, file], api_name="swap", **MODEL_JOB)
