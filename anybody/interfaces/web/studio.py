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
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from anybody.errors import AnybodyError, IdentityError, UsageError
from anybody.identity import Identity, identity_path, library_names, validate_name
from anybody.identity.library import library_file
from anybody.interfaces.cli.options import BUILT_IN_MODELS
from anybody.interfaces.web import limits
from anybody.learning.config import LearnConfig
from anybody.learning.names import checkpoint_path
from anybody.methods import METHODS

RESUME, START_OVER = "resume", "start over"  # what to do with an interrupted run's checkpoint
IMPORTED, MIXED, NO_FACE_KEPT, UNREADABLE = "imported", "mixed", "no face kept", "unreadable"
"""What the library shows in place of a face: an imported embedding or a mix has none; an identity learned
before identity files kept a thumbnail, or a file that cannot be read, shows none."""


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
                 dtype: str | None = None, pipe: Any = None, max_upload_mb: float = limits.MAX_UPLOAD_MB) -> None:
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
             on_step: Callable[[int, int, int], bool] | None = None) -> Any:
        """Draw as `anybody generate` does, into a new folder under `out`: the same PNGs, text chunks and
        contact sheet. A width or height of 0 (or None) is the model's own. Returns the `GenerationResult`
        (its `paths` are the PNG files). The images are drawn one at a time, so that `on_step` (generate's:
        image, step, steps; True stops) sees each and a stop keeps every image finished before it."""
        from anybody.generation import generate

        prompt = limits.check_text(prompt, "Prompt")
        negative_prompt = limits.check_text(negative_prompt, "Negative prompt")
        count, seed = limits.IMAGES.check(count), limits.SEED.check(seed)
        steps, guidance = limits.DRAW_STEPS.check(steps), limits.GUIDANCE.check(guidance)
        width = None if width is None else limits.WIDTH.check(width) or None
        height = None if height is None else limits.HEIGHT.check(height) or None
        identities = self._identities(names)
        with self._model_lock:
            folder = self._new_folder()
            try:
                return generate(prompt, identities, self._plain_pipe(), num_images_per_prompt=count,
                                num_inference_steps=steps, guidance_scale=guidance, seed=seed,
                                negative_prompt=negative_prompt or None, width=width, height=height,
                                out_dir=folder, library=self.library, batch_size=1, on_step=on_step, progress=False)
            finally:
                self._after_drawing(folder)

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
