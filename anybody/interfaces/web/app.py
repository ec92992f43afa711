"""The Gradio page over a `Studio`: three tabs (Learn, Draw, Identities), each event one call of the studio.

Every event that uses the model (learn, draw, attention, import) shares one concurrency group of size 1 in
Gradio's queue, so a second tab waits and sees its place; the rest (face previews, the library, stop) do
not wait for it. Each event is also an endpoint of Gradio's API under the `api_name` given here, which is
what `gradio_client` calls (README). A problem the user can cause is an `AnybodyError`; it reaches the
page as `gr.Error` with the one line the CLI prints after "error: ", never a traceback.

Import this module only after `server.go_offline()`: Gradio reads its settings from the environment.
"""

from __future__ import annotations

import base64
import functools
import html
import inspect
import io
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from PIL import Image

from anybody.errors import AnybodyError, Interrupted, UsageError, out_of_memory
from anybody.generation import defaults
from anybody.identity.formats import FORMATS
from anybody.interfaces.cli.demo import SAMPLE_PHOTO
from anybody.interfaces.web import limits
from anybody.interfaces.web.studio import RESUME, START_OVER, Studio, learning_steps, method_choices
from anybody.methods import DEFAULT_METHOD

MODEL_JOBS = "model"  # the concurrency group of every event that uses the model: one at a time
TABLE_FACE_SIDE = 56
TABLE_COLUMNS = ["face", "name", "method", "base model", "family", "created", "note"]
CSS = """
#learn-progress progress { width: 100%; height: 1.2em; }
#model-banner { border: 2px solid #d97706; border-radius: 8px; padding: 0 12px; background: #fffbeb; }
"""


def shown_to_user(method: Callable) -> Callable:
    """Turn the AnybodyError of an event (a method or a generator method of `Events`) into the page's
    one-line message; anything else is a bug, which Gradio shows as "Error" and the terminal as a traceback."""

    def shown(self: Events, error: BaseException) -> BaseException:
        problem = error if isinstance(error, AnybodyError) else out_of_memory(error)
        if problem is None:
            return error
        # An upload lives at WORK/<random folder>/notes.jpg: say notes.jpg, as the user named it.
        message = re.sub(re.escape(str(self.studio.work)) + r"[\\/](?:[^\\/\s]+[\\/])*", "", str(problem))
        return gr.Error(html.escape(message, quote=False), title="error", print_exception=False,
                        duration=None)  # stays until closed: a user reads it at their own pace

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def stream(self: Events, *args: Any, **kwargs: Any) -> Iterator:
            try:
                yield from method(self, *args, **kwargs)
            except (AnybodyError, RuntimeError, MemoryError) as error:
                raise shown(self, error) from None

        return stream

    @functools.wraps(method)
    def call(self: Events, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (AnybodyError, RuntimeError, MemoryError) as error:
            raise shown(self, error) from None

    return call


def progress_html(step: int, total: int, loss: float | None = None, left: float | None = None,
                  note: str = "") -> str:
    """The learning progress bar: step, loss and the time left, as one line under a <progress>."""
    parts = [f"step {step} / {total}"]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if left is not None:
        parts.append(f"about {_duration(left)} left")
    if note:
        parts.append(note)
    return (f'<progress value="{step}" max="{total}"></progress>'
            f'<div class="progress-text">{html.escape(" · ".join(parts))}</div>')


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def face_cell(face: Image.Image | None) -> str:
    """The reference face as an inline picture for the table's markdown column (no file to serve)."""
    if face is None:
        return "—"
    buffer = io.BytesIO()
    face.resize((TABLE_FACE_SIDE, TABLE_FACE_SIDE)).save(buffer, format="PNG")
    return f"![face](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


class Events:
    """What each event of the page does: one call of the studio, its result turned into components."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.stops: dict[str, threading.Event] = {}  # session -> the stop signal of its learning run

    # --- the library, shown in three places ------------------------------------------------------

    def library_views(self, selected: str | None = None) -> tuple:
        entries = self.studio.entries()
        rows = [[face_cell(entry.face), entry.name, entry.method, entry.base_model, entry.family, entry.created,
                 entry.note] for entry in entries]
        names = [entry.name for entry in entries]
        drawable = [entry.name for entry in entries if not entry.note]
        chosen = selected if selected in names else (names[0] if names else None)
        return (gr.update(value=rows or None), gr.update(choices=drawable),
                gr.update(choices=names, value=chosen))

    # --- learn -----------------------------------------------------------------------------------

    def use_sample(self) -> str:
        folder = self.studio.work / "sample"
        folder.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy(SAMPLE_PHOTO, folder / SAMPLE_PHOTO.name))

    @shown_to_user
    def faces(self, photo: str | None, face: int | None = None) -> tuple:
        """The photo with every face numbered, the aligned crop of the chosen one, and the face choices."""
        if not photo:
            return None, None, gr.update(choices=[], value=None, interactive=False), ""
        preview = self.studio.preview(photo, face)
        choices = [(f"{index}: {size} px{' (largest)' if index == 0 else ''}", index)
                   for index, size in enumerate(preview.sizes)]
        note = "" if len(choices) == 1 else (
            f"The photo has {len(choices)} faces; face {preview.chosen} will be learned. Pick another below.")
        return (preview.annotated, preview.aligned,
                gr.update(choices=choices, value=preview.chosen, interactive=len(choices) > 1), note)

    def interrupted_choice(self, name: str) -> dict:
        """Offer to resume when an interrupted run of this name left a checkpoint."""
        return gr.update(visible=self.studio.interrupted(name or ""), value=RESUME)

    @shown_to_user
    def learn(self, photo: str | None, face: int | None, name: str, method: str, steps: int,
              if_interrupted: str = RESUME, request: gr.Request = None) -> Iterator[tuple[str, str]]:
        """Learn an identity from a photo; yields (progress, status) while it runs."""
        if not photo:
            raise UsageError("No photo was given", "Upload a photo, or use the sample photo")
        stop = threading.Event()
        session = request.session_hash if request is not None else ""
        self.stops[session] = stop
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def callback(step: int, loss: float) -> None:
            outcome["step"] = step
            if stop.is_set():
                raise KeyboardInterrupt
            updates.put((step, loss, time.monotonic()))

        def work() -> None:
            try:
                outcome["identity"] = self.studio.learn(photo, name, method, steps, face,
                                                        if_interrupted=if_interrupted or RESUME, callback=callback)
            except BaseException as error:  # handed to the page below
                outcome["error"] = error

        total = limits.LEARN_STEPS.check(steps)  # for the bar; the studio checks every argument
        resuming = (if_interrupted or RESUME) == RESUME and self.studio.interrupted(name or "")
        thread = threading.Thread(target=work, name="anybody-learn", daemon=True)
        thread.start()
        yield progress_html(0, total, note="preparing: the face, the views, the model"), ""
        first: tuple[int, float] | None = None
        try:
            while thread.is_alive() or not updates.empty():
                try:
                    step, loss, now = updates.get(timeout=0.2)
                except queue.Empty:
                    continue
                while not updates.empty():  # show the latest step only
                    step, loss, now = updates.get_nowait()
                first = first or (step, now)
                rate = (now - first[1]) / (step - first[0]) if step > first[0] else None
                yield progress_html(step, total, loss, rate * (total - step) if rate else None), ""
        finally:  # the page went away or the event was cancelled: stop learning, keep its checkpoint
            stop.set()
            thread.join()
            self.stops.pop(session, None)
        error = outcome.get("error")
        if isinstance(error, Interrupted):
            yield (progress_html(outcome.get("step", 0), total, note="stopped"),
                   f"Stopped. {html.escape(error.problem)}. Press **Learn** again to resume from it "
                   "(or choose *start over*).")
            return
        if error is not None:
            raise error
        identity = outcome["identity"]
        resumed = f", resumed from step {first[0] - 1}" if resuming and first else ""
        yield (progress_html(total, total, note="done"),
               f"Learned **{identity.name}** ({identity.method}, {total} steps{resumed}): `{identity.path}`. "
               f'Draw it in the Draw tab: "a photo of {identity.name} on a beach".')

    def stop_learning(self, request: gr.Request = None) -> str:
        """Stop this page's learning run (its checkpoint is kept)."""
        stop = self.stops.get(request.session_hash if request is not None else "")
        if stop is None:
            return "Nothing is being learned from this page."
        stop.set()
        return "Stopping: saving the checkpoint…"

    # --- draw ------------------------------------------------------------------------------------

    @shown_to_user
    def draw(self, prompt: str, identities: list[str] | None, negative_prompt: str, seed: int, steps: int,
             guidance: float, width: int | None, height: int | None, count: int) -> tuple[list, list[str]]:
        """Draw the identities from a prompt; the gallery and the PNG files (with their text chunks)."""
        result = self.studio.draw(prompt, identities or [], negative_prompt=negative_prompt, seed=seed, steps=steps,
                                  guidance=guidance, width=width, height=height, count=count)
        paths = [str(path) for path in result.paths]
        return [(path, f"seed {seed}") for path, seed in zip(paths, result.seeds)], paths

    @shown_to_user
    def attention(self, prompt: str, identities: list[str] | None, seed: int, steps: int, guidance: float) -> str:
        """One picture and where each word of the prompt attends."""
        return str(self.studio.attention(prompt, identities or [], seed=seed, steps=steps, guidance=guidance))

    def chosen_identities(self, identities: list[str] | None, prompt: str) -> tuple:
        """Suggest a prompt naming the chosen identities; offer the attention view for SeFi-IDE ones."""
        identities = identities or []
        staged = False
        for name in identities:
            try:
                staged = staged or self.studio.stages_of(name) > 0
            except AnybodyError:
                continue
        named = " and ".join(identities)
        suggestion = prompt if prompt.strip() or not identities else f"a photo of {named}"
        hint = f"Write {', '.join(identities)} in the prompt as words." if identities else ""
        return gr.update(value=suggestion), hint, gr.update(visible=staged)

    # --- identities ------------------------------------------------------------------------------

    @shown_to_user
    def details(self, name: str | None) -> dict:
        """What `anybody identities show NAME` prints."""
        return self.studio.details(name) if name else {}

    @shown_to_user
    def export(self, name: str | None, format: str) -> tuple[str, str]:
        """The identity as a file another tool reads (FORMATS), for download, and how to use it."""
        if not name:
            raise UsageError("No identity is chosen", "Choose one in the list first")
        path, hint = self.studio.export(name, format)
        return str(path), "\n\n".join(f"`{html.escape(line)}`" for line in hint.splitlines())

    @shown_to_user
    def import_file(self, file: str | None, name: str) -> str:
        """Add a textual-inversion embedding (.safetensors, .pt, .bin) to the library under a name."""
        if not file:
            raise UsageError("No embedding file was given", "Upload a .safetensors, .pt or .bin embedding")
        identity = self.studio.import_embedding(file, name)
        return f"Imported **{identity.name}** ({identity.token_count} vectors)."

    def ask_removal(self, name: str | None) -> tuple:
        if not name:
            return gr.update(visible=False), ""
        return gr.update(visible=True), f"Remove **{name}**? Its identity file is deleted from the library."

    @shown_to_user
    def remove(self, name: str | None) -> tuple:
        """Delete an identity from the library."""
        if not name:
            raise UsageError("No identity is chosen", "Choose one in the list first")
        self.studio.remove(name)
        return gr.update(visible=False), f"Removed **{name}**."


PRIVATE = {"api_visibility": "private", "concurrency_limit": None}  # page plumbing, not part of the API
MODEL_JOB = {"concurrency_id": MODEL_JOBS, "concurrency_limit": 1}  # one model job at a time, queued


def build_app(studio: Studio) -> gr.Blocks:
    """The page; launch it with `server.running_app`. Each tab builds its parts and wires its own events;
    the events that change the library are followed by one refresh of every view of it."""
    events = Events(studio)
    with gr.Blocks(title="anybody", analytics_enabled=False) as page:
        gr.Markdown("# anybody\nPut a real person into a text-to-image model from one photo, then draw them.")
        gr.Markdown(
            f"**Model: `{studio.model}`, with random weights.** Its pictures are noise: this shows that the "
            "whole path runs. For real pictures start the app with a real model, e.g. "
            "`anybody ui --model CompVis/stable-diffusion-v1-4` (or set ANYBODY_MODEL).",
            elem_id="model-banner", visible=studio.random_weights)
        learned = _learn_tab(events)
        identities = _draw_tab(events, studio)
        tab, table, chosen, changed = _identities_tab(events)

        refresh = {"fn": events.library_views, "inputs": [chosen], "outputs": [table, identities, chosen],
                   **PRIVATE}
        page.load(**refresh)
        tab.select(**refresh)
        for dependency in (learned, *changed):
            dependency.then(**refresh)
    return page


def _learn_tab(events: Events) -> Any:
    """Photo, faces, name, method and steps; Learn and Stop. Returns the event after which learning is done."""
    with gr.Tab("Learn", id="learn", elem_id="tab-learn"), gr.Row():
        with gr.Column():
            photo = gr.File(label="Photo", elem_id="photo", type="filepath")
            sample = gr.Button("Use the sample photo", elem_id="use-sample", size="sm")
            face = gr.Dropdown(label="Face to learn", elem_id="face", choices=[], interactive=False,
                               allow_custom_value=True)
            faces_note = gr.Markdown(elem_id="faces-note")
            name = gr.Textbox(label="Name", elem_id="name", placeholder="alice",
                              info="ASCII letters, digits, - and _, starting with a letter")
            method = gr.Radio(method_choices(), value=DEFAULT_METHOD, label="Method", elem_id="method")
            steps = gr.Number(learning_steps(DEFAULT_METHOD), label="Steps", precision=0, minimum=1,
                              elem_id="steps")
            if_interrupted = gr.Radio([RESUME, START_OVER], value=RESUME, visible=False,
                                      label="An interrupted run of this name left a checkpoint",
                                      elem_id="if-interrupted")
            with gr.Row():
                learn_button = gr.Button("Learn", variant="primary", elem_id="learn")
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop")
            learn_progress = gr.HTML(elem_id="learn-progress")
            learn_status = gr.Markdown(elem_id="learn-status")
        with gr.Column():
            annotated = gr.Image(label="Faces found", elem_id="faces", interactive=False, format="png")
            aligned = gr.Image(label="What is learned: the aligned face (left), the recognizer's crop",
                               elem_id="aligned", interactive=False, format="png")

    sample.click(events.use_sample, outputs=photo, **PRIVATE)
    photo.change(events.faces, inputs=[photo], outputs=[annotated, aligned, face, faces_note], api_name="faces",
                 concurrency_id="faces")
    face.input(events.faces, inputs=[photo, face], outputs=[annotated, aligned, face, faces_note],
               api_visibility="private", concurrency_id="faces")
    method.change(learning_steps, inputs=method, outputs=steps, **PRIVATE)
    name.change(events.interrupted_choice, inputs=name, outputs=if_interrupted, trigger_mode="always_last",
                **PRIVATE)
    stop_button.click(events.stop_learning, outputs=learn_status, api_name="stop", concurrency_limit=None)
    return (learn_button.click(events.learn, inputs=[photo, face, name, method, steps, if_interrupted],
                               outputs=[learn_progress, learn_status], api_name="learn", **MODEL_JOB)
            .then(events.interrupted_choice, inputs=name, outputs=if_interrupted, **PRIVATE))


def _draw_tab(events: Events, studio: Studio) -> gr.Dropdown:
    """Identities, prompt and drawing settings; the gallery and the attention view. Returns the chooser of
    identities (a view of the library)."""
    with gr.Tab("Draw", id="draw", elem_id="tab-draw"), gr.Row():
        with gr.Column():
            identities = gr.Dropdown(label="Identities", multiselect=True, elem_id="identities",
                                     allow_custom_value=True)
            prompt = gr.Textbox(label="Prompt", elem_id="prompt", placeholder="a photo of alice on a beach")
            prompt_hint = gr.Markdown(elem_id="prompt-hint")
            negative = gr.Textbox(label="Negative prompt", elem_id="negative")
            with gr.Row():
                seed = gr.Number(defaults.SEED, label="Seed (image i: seed + i)", precision=0, elem_id="seed")
                count = gr.Number(defaults.NUM_IMAGES, label="Images", precision=0, minimum=1, elem_id="count")
            with gr.Row():
                draw_steps = gr.Number(defaults.STEPS, label="Steps", precision=0, minimum=1, elem_id="draw-steps")
                guidance = gr.Number(defaults.GUIDANCE, label="Guidance", minimum=0, elem_id="guidance")
            with gr.Row():
                width = gr.Number(0, label=f"Width (px; 0: the model's own, {studio.native_size})",
                                  precision=0, minimum=0, elem_id="width")
                height = gr.Number(0, label=f"Height (px; 0: the model's own, {studio.native_size})",
                                   precision=0, minimum=0, elem_id="height")
            draw_button = gr.Button("Draw", variant="primary", elem_id="draw")
        with gr.Column():
            gallery = gr.Gallery(label="Pictures", elem_id="gallery", columns=4, format="png", type="filepath",
                                 interactive=False)
            files = gr.File(label="PNG files (prompt, seed and model in their text chunks)", file_count="multiple",
                            elem_id="draw-files", interactive=False)
            with gr.Accordion("Where each word attends (SeFi-IDE)", visible=False,
                              elem_id="attention-box") as attention_box:
                attention_button = gr.Button("Show the attention view", elem_id="attention")
                attention_map = gr.Image(label="Attention", elem_id="attention-map", interactive=False,
                                         format="png")

    identities.change(events.chosen_identities, inputs=[identities, prompt],
                      outputs=[prompt, prompt_hint, attention_box], **PRIVATE)
    draw_button.click(events.draw, inputs=[prompt, identities, negative, seed, draw_steps, guidance, width, height,
                                           count], outputs=[gallery, files], api_name="draw", **MODEL_JOB)
    attention_button.click(events.attention, inputs=[prompt, identities, seed, draw_steps, guidance],
                           outputs=attention_map, api_name="attention", **MODEL_JOB)
    return identities


def _identities_tab(events: Events) -> tuple[gr.Tab, gr.Dataframe, gr.Dropdown, list[Any]]:
    """The library table, details, export, import and remove. Returns the tab, the table, the chosen
    identity and the events that change the library."""
    with gr.Tab("Identities", id="identities", elem_id="tab-identities") as tab:
        table = gr.Dataframe(headers=TABLE_COLUMNS, datatype=["markdown"] + ["str"] * 6, interactive=False,
                             elem_id="library", wrap=True, label="Library")
        with gr.Row():
            with gr.Column():
                chosen = gr.Dropdown(label="Identity", elem_id="chosen", allow_custom_value=True)
                shown = gr.JSON(label="Details", elem_id="details")
            with gr.Column():
                export_format = gr.Dropdown([(f"{key}: {spec.tools}", key) for key, spec in FORMATS.items()],
                                            value=next(iter(FORMATS)), label="Export format",
                                            elem_id="export-format")
                export_button = gr.Button("Export", elem_id="export")
                exported = gr.File(label="Exported file", elem_id="export-file", interactive=False)
                export_hint = gr.Markdown(elem_id="export-hint")
                remove_button = gr.Button("Remove…", variant="stop", elem_id="remove")
                with gr.Row(visible=False, elem_id="confirm-row") as confirm_row:
                    confirm_text = gr.Markdown(elem_id="confirm-text")
                    confirm_button = gr.Button("Yes, remove", variant="stop", elem_id="confirm-remove")
                    keep_button = gr.Button("Keep", elem_id="keep")
            with gr.Column():
                import_file_input = gr.File(label="Embedding to import (.safetensors, .pt, .bin)",
                                            elem_id="import-file", type="filepath")
                import_name = gr.Textbox(label="Name in the library", elem_id="import-name")
                import_button = gr.Button("Import", elem_id="import")
        library_status = gr.Markdown(elem_id="library-status")

    chosen.change(events.details, inputs=chosen, outputs=shown, api_name="details", concurrency_limit=None)
    export_button.click(events.export, inputs=[chosen, export_format], outputs=[exported, export_hint],
                        api_name="export", concurrency_limit=None)
    remove_button.click(events.ask_removal, inputs=chosen, outputs=[confirm_row, confirm_text], **PRIVATE)
    keep_button.click(lambda: gr.update(visible=False), outputs=confirm_row, **PRIVATE)
    removed = confirm_button.click(events.remove, inputs=chosen, outputs=[confirm_row, library_status],
                                   api_name="remove", **MODEL_JOB)
    imported = import_button.click(events.import_file, inputs=[import_file_input, import_name],
                                   outputs=library_status, api_name="import", **MODEL_JOB)
    return tab, table, chosen, [removed, imported]
