"""What the web app does, without the web: one object over the same API the CLI uses.

The Gradio layer (`app.py`) only turns pages into calls of a `Studio` and its results into components, so
this file holds every decision the app makes (which model, which folder, what a face preview shows) and
can be used and tested without Gradio. Nothing here learns or draws by itself: `learn`, `generate`,
`attention_map`, `export_identity` and `import_embedding` do, exactly as for the command line.

- The model is loaded once, on first use (the `ui` command touches it before serving, so a wrong model is
  one line at the terminal), and kept. A lock makes sure one job at a time uses it, whoever calls.
- Uploads and exports live in `work` (a temporary folder the caller removes); drawings go to `out`,
  one folder per request, as `anybody generate` writes them.
- Every argument is checked here, whoever sent it (the page, `gradio_client`, any HTTP client that reaches
  the port), against what the page offers (`limits.py`): an identity is a name of the app's library, never
  a path, so no file outside the library is ever opened, exported or removed; numbers are within the
  page's bounds; choices among the page's; uploads within the size limit. A refusal is an AnybodyError
  worded for the page (its fields and buttons, never a command-line flag).
- The face shown for an identity is the thumbnail its file keeps (learning writes it, wherever it ran);
  imported and mixed identities have none, and say which.
- A drawing may go into a scene photo (with a painted mask: inpainting; without: img2img), follow a control
  image through a ControlNet, and keep each identity in its place; a face swap draws an identity's face
  into a photo. ControlNets are chosen among those the app offers (`controlnet_choices`), never by a path
  a request sends.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from anybody.errors import AnybodyError, IdentityError, PhotoError, UsageError
from anybody.generation import defaults
from anybody.identity import Identity, identity_path, library_names, validate_name
from anybody.identity.library import library_file
from anybody.interfaces.cli.options import BUILT_IN_MODELS
from anybody.interfaces.web import limits
from anybody.learning.config import LearnConfig
from anybody.learning.names import checkpoint_path
from anybody.methods import METHODS

if TYPE_CHECKING:
    from anybody.generation.swap import SwapResult

RESUME, START_OVER = "resume", "start over"  # what to do with an interrupted run's checkpoint
IMPORTED, MIXED, NO_FACE_KEPT, UNREADABLE = "imported", "mixed", "no face kept", "unreadable"
"""What the library shows in place of a face: an imported embedding or a mix has none; an identity learned
before identity files kept a thumbnail, or a file that cannot be read, shows none."""
SCENE, MASK, CONTROL = "scene photo", "mask", "control image"  # the uploads of a drawing, as the page names them
AS_GIVEN = "as given"  # the control image is what the ControlNet reads; else one of defaults.CONTROL_KINDS
CONTROL_KINDS = (AS_GIVEN, *defaults.CONTROL_KINDS)
TINY_CONTROLNET = "tiny"  # generation.control's built-in ControlNet (random weights): offered for built-in models
ALL_FACES = "all"  # swap every face of the photo


@dataclass(frozen=True)
class FacePreview:
    """What will be learned from a photo: every face numbered, and the chosen one aligned."""

    annotated: Image.Image  # the photo with numbered boxes, the chosen face highlighted
    aligned: Image.Image  # the aligned face (the diffusion target) beside the recognizer's crop
    sizes: list[int]  # width in px of face 0 (the largest), 1, ...
    chosen: int


@dataclass(frozen=True)
class Entry:
    """One row of the library as the app lists it."""

    name: str
    method: str = ""
    base_model: str = ""
    family: str = ""
    created: str = ""
    note: str = ""  # why it cannot be drawn with the app's model, or why it cannot be read
    face: Image.Image | None = None  # the face it was learned from (the file's thumbnail)
    face_placeholder: str = ""  # without a face, the word to show instead: IMPORTED, MIXED, NO_FACE_KEPT, UNREADABLE


class Studio:
    """The app's model, library and folders, and every job it runs on them."""

    def __init__(self, model: str, *, work: str | os.PathLike[str], out: str | os.PathLike[str],
                 library: str | os.PathLike[str] | None = None, device: str | None = None,
                 dtype: str | None = None, pipe: Any = None, max_upload_mb: float = limits.MAX_UPLOAD_MB,
                 controlnets: Sequence[str] = ()) -> None:
        self.model = model
        self.work = Path(work)
        self.out = Path(out)
        self.library = library
        self.max_upload_mb = max_upload_mb  # the page's upload limit (Gradio's), checked here for every caller
        self.device, self.dtype = device, dtype
        self._pipe = pipe
        self._vocabulary: dict[str, tuple[Any, int]] | None = None  # each encoder's tokenizer as loaded
        self._model_lock = threading.RLock()  # one model job at a time, even for callers outside Gradio
        self._drawings = 0
        self.controlnets = list(controlnets)  # the ControlNets the app was started with (`anybody ui --controlnet`)
        self._controlnet_choices: list[str] | None = None
        self._controlnet: tuple[str, Any] | None = None  # the last ControlNet used, loaded: (its choice, the model)

    @property
    def random_weights(self) -> bool:
        """True for a built-in model: its pictures are noise, which the page says."""
        return self.model in BUILT_IN_MODELS

    @property
    def pipe(self) -> Any:
        """The pipeline, loaded on first use and kept."""
        with self._model_lock:
            if self._pipe is None:
                from anybody.models import load_pipeline

                self._pipe = load_pipeline(self.model, device=self.device, dtype=self.dtype)
            if self._vocabulary is None:
                self._vocabulary = {name: (copy.deepcopy(tokenizer), len(tokenizer))
                                    for name, tokenizer, _ in _text_encoders(self._pipe)}
            return self._pipe

    def _plain_pipe(self) -> Any:
        """The kept pipeline with its tokenizers and token tables as loaded, for the next job.

        Learning and drawing add the identities' tokens to the pipeline they are given. A command line
        process ends after one job; the app's pipeline lives on, so each job starts from the vocabulary
        the model came with: the token table (which the celeb basis is keyed by, so a resumed run and the
        basis cache find the same one) and the tokenizer do not grow with every identity ever drawn.
        """
        pipe = self.pipe
        for name, _, encoder in _text_encoders(pipe):
            tokenizer, size = self._vocabulary[name]
            setattr(pipe, name.replace("text_encoder", "tokenizer"), copy.deepcopy(tokenizer))
            if encoder.get_input_embeddings().weight.shape[0] != size:
                encoder.resize_token_embeddings(size)  # keeps the first `size` rows: the model's own
        return pipe

    @property
    def native_size(self) -> int:
        """The side in px the model draws by default."""
        return int(self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)

    # --- learn -------------------------------------------------------------------------------------

    def preview(self, photo: str | os.PathLike[str], face_index: int | None = None) -> FacePreview:
        """The faces in a photo and the aligned crop of the one that would be learned (no model needed)."""
        from anybody.face import align_face, choose_face, find_faces, get_face_encoder, load_photo
        from anybody.face.preview import annotate, side_by_side

        index = self._face_index(face_index)
        image = load_photo(self._upload(photo, "photo"))
        faces = find_faces(image)
        if faces and index is not None:
            limits.check_face(index, len(faces))
        face = choose_face(faces, index)
        chosen = faces.index(face)
        crop = get_face_encoder("dlib").crop(image, face)
        return FacePreview(annotated=annotate(image, faces, chosen), sizes=[found.size for found in faces],
                           aligned=side_by_side(align_face(image, face), crop), chosen=chosen)

    def interrupted(self, name: str) -> bool:
        """Whether an interrupted run of `name` left a checkpoint (a start then offers to resume it)."""
        try:
            return checkpoint_path([validate_name(name)], self.library).is_file()
        except AnybodyError:
            return False

    def learn(self, photo: str | os.PathLike[str], name: str, method: str, steps: int,
              face_index: int | None = None, *, if_interrupted: str = RESUME, replace: bool = False,
              callback: Callable[[int, float], None] | None = None) -> Identity:
        """Learn `name` from one photo on the app's model, as `anybody learn` does (its file keeps the face).

        An interrupted run of the same name is resumed (`if_interrupted="resume"`) or discarded ("start
        over"); a name the library has is refused unless `replace`. `callback(step, loss)` is `learn`'s:
        raising KeyboardInterrupt from it stops learning with the checkpoint kept (`Interrupted`).
        """
        from anybody.face import find_faces, load_photo
        from anybody.learning import check_names, learn

        name = _checked_name(name)
        method = limits.check_choice(method, list(METHODS), "Method")
        steps = limits.LEARN_STEPS.check(steps)
        if_interrupted = limits.check_choice(if_interrupted, [RESUME, START_OVER], "An interrupted run")
        index = self._face_index(face_index)
        image = load_photo(self._upload(photo, "photo"))  # a bad file is refused before the model is touched
        if index:  # face 0 is there whenever any face is; another is looked for in the photo
            limits.check_face(index, len(find_faces(image)))
        config = LearnConfig.for_method(method, steps=steps, face_index=index)
        config.check()
        resume = if_interrupted == RESUME and self.interrupted(name)
        restart = if_interrupted == START_OVER
        if not (replace or resume):
            self._require_free(name, "learn it again")
        names = check_names([photo], [name], config, self.library, resume=resume, restart=restart, replace=replace)
        with self._model_lock:
            identity = learn([photo], names, self._plain_pipe(), config, library=self.library, resume=resume,
                             restart=restart, replace=replace, callback=callback, progress=False)[0]
        return Identity.load(identity.path)  # as read back: with the checksum the file was sealed with

    def _upload(self, path: object, what: str) -> Path:
        return limits.check_upload(path, what, self.max_upload_mb)

    @staticmethod
    def _face_index(face_index: object) -> int | None:
        """None (the largest face), or a face number within the page's bound."""
        return None if face_index is None else int(limits.FACE.check(face_index))

    def _require_free(self, name: str, again: str) -> None:
        """Refuse a name the library has, in the page's words (its Replace box, not --replace)."""
        if identity_path(name, self.library).exists():
            raise IdentityError(f"The library already has an identity called {name}",
                                f"Choose another name (e.g. {name}_2), or tick Replace to {again}")

    def _identity(self, name: object) -> Identity:
        """The identity called `name` in the app's library. Only a name: a path, or anything else, is refused
        by the name rules, so no request reaches a file outside the library."""
        return Identity.load(self._library_file(name))

    def _library_file(self, name: object) -> Path:
        return library_file(_checked_name(name), self.library, "Choose one in the list (it may have been removed)")

    def _identities(self, names: object) -> list[Identity]:
        if names is None:
            return []
        if not isinstance(names, (list, tuple)) or len(names) > limits.MAX_IDENTITIES:
            raise UsageError(f"Identities must be a list of at most {limits.MAX_IDENTITIES} names of the library",
                             "Choose them in Identities")
        return [self._identity(name) for name in names]

    # --- draw --------------------------------------------------------------------------------------

    def draw(self, prompt: str, names: Sequence[str], *, negative_prompt: str | None, seed: int, steps: int,
             guidance: float, width: int | None, height: int | None, count: int,
             on_step: Callable[[int, int, int], bool] | None = None, scene: str | os.PathLike[str] | None = None,
             mask: str | os.PathLike[str] | None = None, strength: float | None = None,
             control: str | os.PathLike[str] | None = None, control_kind: str = AS_GIVEN,
             controlnet: str | None = None, control_scale: float = defaults.CONTROL_SCALE,
             places: dict[str, str] | None = None) -> Any:
        """Draw as `anybody generate` does, into a new folder under `out`: the same PNGs, text chunks and
        contact sheet. A width or height of 0 (or None) is the model's own. Returns the `GenerationResult`
        (its `paths` are the PNG files). The images are drawn one at a time, so that `on_step` (generate's:
        image, step, steps; True stops) sees each and a stop keeps every image finished before it.

        Into a `scene` photo (uploaded): with a `mask` (white = redraw) only that is drawn, without one the whole
        photo is redrawn by `strength` (by default generate's). Following a `control` image (as given, or
        made from that photo: `control_kind`) through `controlnet`, one of `controlnet_choices()`, weighed by
        `control_scale`. Each identity of `places` ({name: "left", "0,0,0.5,1", ... or "anywhere"}) in its place.
        Every file and number is checked before the model is used."""
        from anybody.generation import generate

        prompt = limits.check_text(prompt, "Prompt")
        negative_prompt = limits.check_text(negative_prompt, "Negative prompt")
        count, seed = limits.IMAGES.check(count), limits.SEED.check(seed)
        steps, guidance = limits.DRAW_STEPS.check(steps), limits.GUIDANCE.check(guidance)
        width = None if width is None else limits.WIDTH.check(width) or None
        height = None if height is None else limits.HEIGHT.check(height) or None
        identities = self._identities(names)
        regions = limits.check_places(places, [identity.name for identity in identities])
        inputs = self._drawing_inputs(scene, mask, strength, steps, control, control_kind, controlnet, control_scale)
        with self._model_lock:
            folder = self._new_folder()
            try:
                if inputs.get("controlnet") is not None:
                    inputs["controlnet"] = self._loaded_controlnet(inputs["controlnet"])
                return generate(prompt, identities, self._plain_pipe(), num_images_per_prompt=count,
                                num_inference_steps=steps, guidance_scale=guidance, seed=seed,
                                negative_prompt=negative_prompt or None, width=width, height=height,
                                out_dir=folder, library=self.library, batch_size=1, on_step=on_step, progress=False,
                                regions=regions, **inputs)
            finally:
                self._after_drawing(folder)

    def _drawing_inputs(self, scene: object, mask: object, strength: object, steps: int, control: object,
                        control_kind: object, controlnet: object, control_scale: object) -> dict[str, Any]:
        """generate's arguments for a scene photo, its mask, a control image and its ControlNet: every number
        within the page's bounds (whether used or not), the ControlNet among those offered, and the files read
        (the same checks as generate's, so that nothing is refused after the model has started)."""
        from anybody.generation.inputs import read_inputs

        strength = None if strength is None else limits.STRENGTH.check(strength)
        control_kind = limits.check_choice(control_kind, list(CONTROL_KINDS), "Control image kind")
        control_scale = limits.CONTROL_SCALE.check(control_scale)
        controlnet = self._controlnet_choice(controlnet, needed=bool(control))
        arguments: dict[str, Any] = {}
        if scene:
            arguments.update(image=self._upload(scene, SCENE), strength=strength)
            if strength is not None:
                limits.check_steps_run(strength, steps)
        if mask:
            if not scene:
                raise UsageError("A mask was painted with no scene photo under it",
                                 "Upload the scene photo first, then paint on it where to draw")
            arguments["mask"] = self._upload(mask, MASK)
        if control:
            arguments.update(control_image=self._upload(control, CONTROL), controlnet=controlnet,
                             control_scale=control_scale,
                             control_kind=None if control_kind == AS_GIVEN else control_kind)
        try:
            read_inputs(**arguments, steps=steps)
        except (UsageError, PhotoError) as error:  # in the page's words: the command line's picture is the scene
            # photo; a fix naming a command-line flag (an all-white mask's) is the command line's, not the page's
            problem, fix = (re.sub(r"\b([Tt]he) picture\b", rf"\1 {SCENE}", text) for text in
                            (error.problem, error.fix or ""))
            raise type(error)(problem, None if "--" in fix else fix) from None
        return arguments

    def controlnet_choices(self) -> list[str]:
        """The ControlNets the page offers, and the only ones a request may ask for: the built-in tiny one for a
        built-in model, those the app was started with, and the ControlNets in the Hugging Face cache (read
        offline) that fit the model; before the model is loaded, every cached one (a request is then checked
        without loading it; one of another family is refused when drawing). A request never names a path."""
        if self._controlnet_choices is not None:
            return self._controlnet_choices
        offered = [TINY_CONTROLNET] if self.random_weights else []
        offered += [name for name in self.controlnets if name not in offered]
        offered += [name for name in _cached_controlnets(self._pipe) if name not in offered]
        if self._pipe is not None:  # the page's list: kept (the cache is read once)
            self._controlnet_choices = offered
        return offered

    def _controlnet_choice(self, controlnet: object, needed: bool) -> str | None:
        """The ControlNet chosen, when given or `needed` (a control image was given)."""
        if controlnet in (None, "") and not needed:
            return None
        choices = self.controlnet_choices()
        if not choices:
            raise UsageError("This app offers no ControlNet to read the control image",
                             "Remove the control image, or ask whoever started the app to start it with a ControlNet")
        if controlnet in (None, ""):
            raise UsageError("No ControlNet is chosen for the control image", "Choose one in ControlNet")
        return limits.check_choice(controlnet, choices, "ControlNet")

    def _loaded_controlnet(self, name: str) -> Any:
        """The ControlNet `name`, loaded once and kept until another is chosen (one at a time in memory)."""
        from anybody.generation.control import load_controlnet

        if self._controlnet is None or self._controlnet[0] != name:
            self._controlnet = None  # the previous one is let go before the next is read
            self._controlnet = (name, load_controlnet(name, self.pipe))
        return self._controlnet[1]

    def attention(self, prompt: str, names: Sequence[str], *, seed: int, steps: int, guidance: float) -> Path:
        """One picture and, for every word, where its cross-attention went (`anybody attention`)."""
        from anybody.generation import attention_map

        prompt = limits.check_text(prompt, "Prompt")
        seed, steps, guidance = limits.SEED.check(seed), limits.DRAW_STEPS.check(steps), limits.GUIDANCE.check(guidance)
        identities = self._identities(names)
        with self._model_lock:
            folder = self._new_folder()
            try:
                folder.mkdir(parents=True)
                return attention_map(prompt, identities, self._plain_pipe(), out=folder / "attention.png", seed=seed,
                                     num_inference_steps=steps, guidance_scale=guidance, library=self.library)
            finally:
                self._after_drawing(folder)

    # --- swap --------------------------------------------------------------------------------------

    def faces_to_swap(self, photo: str | os.PathLike[str]) -> tuple[Image.Image, list[int]]:
        """The photo with every face numbered (no model needed), and each face's width in px (0 the largest);
        a photo without a face is refused."""
        from anybody.face import choose_face, find_faces, load_photo
        from anybody.face.preview import annotate

        image = load_photo(self._upload(photo, "photo"))
        faces = find_faces(image)
        choose_face(faces, 0)  # no face: refused in the detector's words
        return annotate(image, faces, None), [face.size for face in faces]

    def swap(self, photo: str | os.PathLike[str], name: str, *, face: int | str | None = None,
             prompt: str | None = None, strength: float | None = None, steps: int = defaults.STEPS,
             seed: int = defaults.SEED, on_step: Callable[[int, int, int, int], None] | None = None) -> SwapResult:
        """Draw the identity `name`'s face in place of a face of the photo (`face`: its number, 0 the largest,
        or "all"), as `anybody swap` does, into a new folder under `out`. `on_step(face, faces, step, steps)`
        after every denoising step (swap's). `strength` is swap's own by default. Returns the `SwapResult`
        (its `path` is the PNG, with the score in its chunks)."""
        from anybody.face import find_faces, load_photo
        from anybody.generation.checks import check_names_used
        from anybody.generation.swap import SWAP_STRENGTH, chosen_faces, swap

        prompt = limits.check_text(prompt, "Prompt")
        strength = SWAP_STRENGTH if strength is None else strength
        strength, steps, seed = limits.STRENGTH.check(strength), limits.DRAW_STEPS.check(steps), limits.SEED.check(seed)
        limits.check_steps_run(strength, steps)
        choice = None if face is None or face == ALL_FACES else int(limits.FACE_TO_SWAP.check(face))
        identity = self._identity(name)
        if prompt:
            check_names_used(prompt, [identity.name])
        photo = self._upload(photo, "photo")
        faces = find_faces(load_photo(photo))
        if faces and choice is not None:
            limits.check_face(choice, len(faces), limits.FACE_TO_SWAP.label)
        chosen_faces(faces, ALL_FACES if face == ALL_FACES else choice)  # no face, one too small: before the model
        with self._model_lock:
            folder = self._new_folder()
            try:
                return swap(photo, identity, self._plain_pipe(), face=ALL_FACES if face == ALL_FACES else choice,
                            prompt=prompt or None, strength=strength, num_inference_steps=steps, seed=seed,
                            out=folder / f"{photo.stem}-{identity.name}.png", library=self.library, progress=False,
                            on_step=on_step)
            finally:
                self._after_drawing(folder)

    def _new_folder(self) -> Path:
        """A folder under `out` no other drawing uses: the date and time, the process and a counter (called
        under the model lock)."""
        self._drawings += 1
        return self.out / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{self._drawings:03d}"

    def _after_drawing(self, folder: Path) -> None:
        """Take SeFi-IDE's stage switch off the kept pipeline (learning must find it plain), and drop the
        folder of a drawing that failed before writing anything."""
        switch = getattr(self._pipe, "anybody_stage_switch", None)
        if switch is not None:
            switch.remove()
            del self._pipe.anybody_stage_switch
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    # --- the library -------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every identity in the library, readable or not, with what the app knows of it."""
        from anybody.generation import check_fits

        entries = []
        for name in library_names(self.library):
            try:
                identity = self._identity(name)
            except AnybodyError as error:
                entries.append(Entry(name, method="unreadable", note=error.problem, face_placeholder=UNREADABLE))
                continue
            note = ""
            if self._pipe is not None:
                try:
                    check_fits(identity, self._pipe)
                except AnybodyError as error:
                    note = f"does not fit {self.model}: {error.problem}"
            face = identity.face_picture()
            entries.append(Entry(name, identity.method, identity.base_model,
                                 str(identity.metadata.get("family", "unknown")),
                                 str(identity.metadata.get("created", ""))[:10], note, face,
                                 "" if face is not None else _placeholder(identity)))
        return entries

    def stages_of(self, name: str) -> int:
        """How many denoising stages the identity has its own tokens for (SeFi-IDE; 0 for the others)."""
        return self._identity(name).stages

    def details(self, name: str) -> dict[str, object]:
        """What `anybody identities show NAME` prints, as a dict."""
        identity = self._identity(name)
        shown: dict[str, object] = {"name": identity.name, "file": str(identity.path),
                                    "bytes": identity.path.stat().st_size if identity.path else None}
        for encoder, embeddings in identity.encoder_embeddings.items():
            shown[f"{encoder}.embeddings"] = list(embeddings.shape)
            coefficients = identity.encoder_coefficients.get(encoder)
            if coefficients is not None:
                shown[f"{encoder}.coefficients"] = list(coefficients.shape)
        if identity.stages:
            shown["stages"] = identity.stages
        return shown | {"metadata": dict(sorted(identity.metadata.items()))}

    def export(self, name: str, format: str) -> tuple[Path, str]:
        """The identity in one of `FORMATS`, in a new folder of `work`, and how to use it there. A folder
        export (SDXL for diffusers) comes zipped, so that it is one download."""
        from anybody.identity.formats import FORMATS, default_token, export_path, prompt_hint
        from anybody.identity.writers import export_identity

        format = limits.check_choice(format, list(FORMATS), "Export format")
        identity = self._identity(name)
        folder = Path(tempfile.mkdtemp(prefix="export-", dir=self.work))
        path = export_identity(identity, format, export_path(identity, format, folder))
        hint = prompt_hint(format, path, token=default_token(identity.name), vectors=identity.token_count)
        if path.is_dir():
            return Path(shutil.make_archive(str(path), "zip", root_dir=path)), hint
        return path, hint

    def import_embedding(self, file: str | os.PathLike[str], name: str, *, replace: bool = False) -> Identity:
        """Add a textual-inversion embedding under `name`, as `anybody import FILE --name NAME --model M` does
        with the app's model (its width checked); a name the library has is refused unless `replace`."""
        from anybody.identity.readers import import_embedding

        checked = _checked_name(name)
        file = self._upload(file, "embedding file")
        if not replace:
            self._require_free(checked, "replace it")
        with self._model_lock:
            widths = {key: encoder.get_input_embeddings().weight.shape[1]
                      for key, _, encoder in _text_encoders(self.pipe)}
        identity = import_embedding(file, checked, widths)
        identity.metadata["base_model"] = self.model
        identity.save(library=self.library)
        return identity

    def remove(self, name: str) -> None:
        """Delete the identity's file from the library (one that cannot be read too: it is not opened)."""
        self._library_file(name).unlink()


def _cached_controlnets(pipe: Any) -> list[str]:
    """The ControlNets of the Hugging Face cache by Hub id; with a pipeline, only those that fit its UNet (their
    configs read, not their weights)."""
    import json

    from anybody.models.catalog import list_models

    cached = [entry for entry in list_models()[0] if entry.kind == "ControlNetModel" and entry.path is not None]
    if pipe is None:
        return [entry.name for entry in cached]
    from anybody.generation.control import check_controlnet_fits

    fitting = []
    for entry in cached:
        try:
            check_controlnet_fits(json.loads((Path(entry.path) / "config.json").read_text()), pipe, entry.name)
        except (OSError, ValueError, AnybodyError):
            continue
        fitting.append(entry.name)
    return fitting


def _text_encoders(pipe: Any) -> list[tuple[str, Any, Any]]:
    from anybody.models import text_encoders

    return text_encoders(pipe)


def _checked_name(name: object) -> str:
    """The name rules of `validate_name`, with the page's words for a missing name (not the --name flag)."""
    if not isinstance(name, str) or not name.strip():
        raise IdentityError("The identity name is empty", "Type a short name, such as alice")
    return validate_name(name)


def _placeholder(identity: Identity) -> str:
    """What the library shows for an identity whose file keeps no face."""
    if identity.method == "imported":
        return IMPORTED
    return MIXED if "mixed_from" in identity.metadata else NO_FACE_KEPT


def learning_steps(method: str) -> int:
    """The method's own default number of steps (the paper's)."""
    return LearnConfig.for_method(method).steps


def method_choices() -> list[tuple[str, str]]:
    """Every learning method, so that one added later appears in the app with no change here."""
    return [(f"{method.name}: {method.summary}", method.name) for method in METHODS.values()]
