"""The Gradio page over a `Studio`: three tabs (Learn, Draw, Identities), each event one call of the studio.

Every event that uses the model (learn, draw, attention, import, remove) shares one concurrency group of size
1 in Gradio's queue, so a second tab waits and sees its place; the rest (face previews, the library, stop)
do not wait for it. Each event is also an endpoint of Gradio's API under the `api_name` given here, which is
what `gradio_client` calls (docs/web.md).

What a user sees when something is wrong: one message (a Gradio toast) in the page's words; the outputs keep
what they showed (Gradio's "Error" badge on them is hidden by `CSS`), the progress line of learning says so,
and the terminal gets one log line, never a traceback. A problem the user can cause is an `AnybodyError`;
anything else is a bug, which keeps Gradio's own "Error" toast and traceback.

Import this module only after `server.go_offline()`: Gradio reads its settings from the environment.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import gradio as gr
from PIL import Image

from anybody.errors import AnybodyError, Interrupted, UsageError
from anybody.generation import defaults
from anybody.identity.formats import FORMATS
from anybody.interfaces.cli.demo import SAMPLE_PHOTO
from anybody.interfaces.web import limits
from anybody.interfaces.web.control_tab import drawing_inputs, scene_and_control, swap_tab
from anybody.interfaces.web.parts import (
    CLOSE_MESSAGES,
    MODEL_JOB,
    PRIVATE,
    empty_state,
    number_field,
    photo_input,
    shown_to_user,
    users_problem,
)
from anybody.interfaces.web.studio import (
    AS_GIVEN,
    RESUME,
    START_OVER,
    Entry,
    Studio,
    learning_steps,
    method_choices,
)
from anybody.methods import DEFAULT_METHOD

log = logging.getLogger("anybody")

TABLE_FACE_SIDE = 48  # px of a face in the library table
DETAILS_FACE_SIDE = 128  # px of the chosen identity's face beside its details
TABLE_COLUMNS = ["face", "name", "method", "base model", "created", "note"]
NO_DETAILS = "—"
NO_PICTURES = "Pictures: none yet. Choose identities, write a prompt that names them, press Draw"
# Gradio marks every output of an event that raised with a red "Error" badge over it (its status tracker);
# the page says what went wrong once, in the toast, and the outputs keep what they showed.
CSS = """
[data-testid="status-tracker"]:has(> .error) { display: none !important; }
#model-banner { border: 2px solid #d97706; border-radius: 8px; padding: 0 12px; background: #fffbeb; }
.progress-line progress { width: 100%; height: 1.1em; accent-color: var(--color-accent); }
.progress-line .progress-text { font-variant-numeric: tabular-nums; }
.empty-state { color: var(--body-text-color-subdued); }
.empty-state p { margin: 0.3em 0; }
#learn, #draw { min-height: 3em; font-size: var(--text-lg); }
.face-placeholder { display: inline-flex; align-items: center; justify-content: center;
  width: 48px; height: 48px; border-radius: 6px; background: var(--background-fill-secondary); flex: none;
  border: 1px dashed var(--border-color-primary); font: 10px/1.1 var(--font); text-align: center;
  word-break: normal; overflow-wrap: normal; color: var(--body-text-color-subdued); }
#library img { width: 48px; height: 48px; border-radius: 6px; }
#details .identity { display: flex; gap: 1.25rem; align-items: flex-start; }
#details .identity img, #details .identity .face-placeholder { width: 128px; height: 128px; border-radius: 8px;
  flex: none; margin: 0; }
#details table, #details tbody, #details tr, #details th, #details td { border: none !important;
  background: none !important; }
#details tr + tr { border-top: 1px solid var(--border-color-primary) !important; }
#details th { text-align: left; font-weight: 600; padding: 0.2em 1.5em 0.2em 0; white-space: nowrap; }
#details td { padding: 0.2em 0; vertical-align: top; word-break: break-word; }
#export-howto dt { font-weight: 600; margin-top: 0.5em; }
#export-howto dd { margin-left: 0; }
#export-howto code { white-space: pre-wrap; word-break: break-all; }
#confirm-dialog { position: fixed; inset: 0; z-index: 1000; background: rgba(15, 23, 42, 0.55);
  display: flex; flex-direction: column !important; align-items: center; justify-content: center; }
#confirm-dialog > div { max-width: 28rem; width: calc(100% - 2rem); flex: 0 0 auto !important; padding: 1.5rem;
  height: auto !important; min-height: 0 !important;
  background: var(--background-fill-primary); border-radius: 12px; box-shadow: 0 20px 50px rgba(0, 0, 0, 0.35); }
"""
# The suggestion a chosen identity brings: decided in the browser, when the reply is applied, from the prompt
# as it is then, so that nothing the user typed meanwhile is ever replaced (a server reply can come late).
SUGGEST_PROMPT = """(chosen, prompt) => {
  if (prompt && prompt.trim()) return prompt;
  return chosen && chosen.length ? "a photo of " + chosen.join(" and ") : prompt;
}"""
# A clicked name goes into the prompt where the cursor was (at the end if it never was in the prompt), with
# a space either side, and is added to the chosen identities.
INSERT_NAME = """(name, prompt, chosen) => {
  prompt = prompt || ""; chosen = chosen || [];
  if (!name) return [prompt, chosen];
  const box = document.querySelector("#prompt textarea");
  const at = box && box.dataset.caret !== undefined ? Math.min(Number(box.dataset.caret), prompt.length)
                                                    : prompt.length;
  const before = prompt.slice(0, at), after = prompt.slice(at);
  const space_before = before && !/\\s$/.test(before) ? " " : "";
  const space_after = after && !/^[\\s,.!?;:]/.test(after) ? " " : "";
  const text = before + space_before + name + space_after + after;
  return [text, chosen.includes(name) ? chosen : chosen.concat([name])];
}"""
# Remembers where the cursor was in the prompt, for INSERT_NAME (clicking a name takes the focus away).
REMEMBER_CARET = """() => {
  document.addEventListener("selectionchange", () => {
    const box = document.activeElement;
    if (box && box.matches("#prompt textarea")) box.dataset.caret = String(box.selectionStart);
  });
}"""


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


def outcome_html(text: str) -> str:
    """The progress line when there is no bar to show: what happened."""
    return f'<div class="progress-text">{html.escape(text)}</div>'


NO_IDENTITY_CHOSEN = empty_state("Choose an identity in the table to see it here.")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _png_data(face: Image.Image, side: int) -> str:
    buffer = io.BytesIO()
    face.resize((side, side)).save(buffer, format="PNG")
    return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"


def face_html(entry: Entry | None, side: int) -> str:
    """The face an identity was learned from, as an inline picture (no file to serve), or the word that
    stands in for one ("imported", ...)."""
    if entry is not None and entry.face is not None:
        return f'<img src="{_png_data(entry.face, side)}" alt="face of {html.escape(entry.name)}">'
    word = entry.face_placeholder if entry is not None and entry.face_placeholder else "no face"
    return f'<span class="face-placeholder">{html.escape(word)}</span>'


def detail_rows(details: dict[str, Any]) -> list[tuple[str, str]]:
    """The details a person reads, as (label, value) rows, from what `Studio.details` returns."""
    metadata = details.get("metadata") or {}
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    photos = metadata.get("photos") if isinstance(metadata.get("photos"), list) else (
        [metadata["photo"]] if metadata.get("photo") else [])
    vectors = [shape for key, shape in details.items() if key.endswith(".embeddings") and isinstance(shape, list)]
    size = []
    if isinstance(details.get("bytes"), int):
        size.append(_bytes(details["bytes"]))
    if vectors:
        size.append(" + ".join(f"{rows} × {width}" for rows, width in vectors) + " vectors")
    created = str(metadata.get("created", ""))
    rows = [("Name", details.get("name")), ("Family", metadata.get("family")), ("Method", metadata.get("method")),
            ("Base model", metadata.get("base_model")), ("Photos", ", ".join(map(str, photos))),
            ("Steps", training.get("steps")), ("Final loss", metadata.get("final_loss")),
            ("Size", " · ".join(size)), ("Created", created.replace("T", " ")[:16] if created else "")]
    return [(label, NO_DETAILS if value in (None, "", "unknown") else str(value)) for label, value in rows]


def _bytes(count: int) -> str:
    return f"{count / 2**20:.1f} MB" if count >= 2**20 else f"{count / 2**10:.1f} kB" if count >= 2**10 \
        else f"{count} bytes"


def details_html(face: str, rows: list[tuple[str, str]]) -> str:
    """The face beside the details, as labelled rows."""
    table = "".join(f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>" for label, value in rows)
    return f'<div class="identity">{face}<table>{table}</table></div>'



def export_howto(file_name: str, hint: str, folder: str) -> str:
    """How to use a downloaded export: the file, the tool and what to do there, the word to type. `hint` is
    `Studio.export`'s ("TOOLS: USE" and "prompt word: WORD (ORIGIN)"), said of the file where the server wrote
    it; the person has it as `file_name` wherever they saved it, so the server's `folder` is left out."""
    use_line, word_line = (line.replace(folder + os.sep, "") for line in hint.splitlines()[:2])
    tools, use = use_line.split(": ", 1)
    word = word_line.removeprefix("prompt word: ").rsplit(" (", 1)[0]
    unzip = " (unzip it first: it is a folder)" if file_name.endswith(".zip") else ""
    parts = [("Download", f"<code>{html.escape(file_name)}</code> (above){unzip}"),
             (f"In {tools}", html.escape(use)),
             ("Type in the prompt", f"<code>{html.escape(word)}</code>")]
    return '<dl>' + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in parts) + "</dl>"


class Events:
    """What each event of the page does: one call of the studio, its result turned into components."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.stops: dict[tuple[str, str], threading.Event] = {}  # (job, session) -> its stop signal
        self.listed: dict[str, Entry] = {}  # the library as last listed, for the chosen identity's face

    def in_page_words(self, problem: AnybodyError) -> str:
        """The problem and its fix as the page says them: an upload by its file name (not the server's folder
        it was stored in), and no command-line flag (a fix that names one is the command line's, not the
        page's: the problem alone is said)."""
        text = f"{problem.problem}. {problem.fix}." if problem.fix and "--" not in problem.fix else \
            f"{problem.problem}."
        # An upload lives at WORK/<random folder>/notes.jpg: say notes.jpg, as the user named it.
        return re.sub(re.escape(str(self.studio.work)) + r"[\\/](?:[^\\/\s]+[\\/])*", "", text)

    def _stop_signal(self, job: str, request: gr.Request | None) -> tuple[tuple[str, str], threading.Event]:
        key = (job, request.session_hash if request is not None else "")
        stop = self.stops[key] = threading.Event()
        return key, stop

    def _stop(self, job: str, request: gr.Request | None) -> bool:
        stop = self.stops.get((job, request.session_hash if request is not None else ""))
        if stop is not None:
            stop.set()
        return stop is not None

    # --- the library, shown in three places ------------------------------------------------------

    def library_views(self, selected: str | None = None) -> tuple:
        """The table, the identities that can be drawn (the chooser and the names to insert) and the chosen
        identity of the Identities tab."""
        entries = self.studio.entries()
        self.listed = {entry.name: entry for entry in entries}
        rows = [[face_html(entry, TABLE_FACE_SIDE), entry.name, entry.method, entry.base_model or NO_DETAILS,
                 entry.created, entry.note] for entry in entries]
        names = [entry.name for entry in entries]
        drawable = [entry.name for entry in entries if not entry.note]
        chosen = selected if selected in names else (names[0] if names else None)
        return (gr.update(value=rows or None), gr.update(choices=drawable),
                gr.update(samples=[[name] for name in drawable], visible=bool(drawable)),
                gr.update(choices=names, value=chosen))

    # --- learn -----------------------------------------------------------------------------------

    def use_sample(self) -> str:
        folder = self.studio.work / "sample"
        folder.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy(SAMPLE_PHOTO, folder / SAMPLE_PHOTO.name))

    @shown_to_user("Photo")
    def faces(self, photo: str | None, face: int | None = None) -> tuple:
        """The photo with every face numbered, the aligned crop of the chosen one, and the face choices."""
        if not photo:
            return None, None, gr.update(choices=[], value=None, interactive=False, visible=False), ""
        preview = self.studio.preview(photo, face)
        choices = [(f"{index}: {size} px{' (largest)' if index == 0 else ''}", index)
                   for index, size in enumerate(preview.sizes)]
        note = "" if len(choices) == 1 else (
            f"The photo has {len(choices)} faces; face {preview.chosen} will be learned. Pick another below.")
        return (preview.annotated, preview.aligned,
                gr.update(choices=choices, value=preview.chosen, interactive=len(choices) > 1,
                          visible=len(choices) > 1), note)

    def interrupted_choice(self, name: str) -> dict:
        """Offer to resume when an interrupted run of this name left a checkpoint."""
        return gr.update(visible=self.studio.interrupted(name or ""), value=RESUME)

    @shown_to_user("Not learned")
    def learn(self, photo: str | None, face: int | None, name: str, method: str, steps: int,
              if_interrupted: str = RESUME, replace: bool = False,
              request: gr.Request = None) -> Iterator[tuple[str, str]]:
        """Learn an identity from a photo; yields (progress, status) while it runs. The progress line ends
        saying what happened: done, stopped, or not learned (and why, in the message)."""
        try:
            if not photo:
                raise UsageError("No photo was given", "Upload a photo, take one with the webcam, or use the sample "
                                 "photo")
            total = limits.LEARN_STEPS.check(steps)  # for the bar; the studio checks every argument
            yield from self._learn(photo, face, name, method, total, if_interrupted or RESUME, bool(replace),
                                   request)
        except (AnybodyError, RuntimeError, MemoryError) as error:
            problem = users_problem(error)
            if problem is not None:
                yield outcome_html(f"Not learned: {problem.problem}."), ""
            raise

    def _learn(self, photo: str, face: int | None, name: str, method: str, total: int, if_interrupted: str,
               replace: bool, request: gr.Request | None) -> Iterator[tuple[str, str]]:
        key, stop = self._stop_signal("learn", request)
        updates: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def callback(step: int, loss: float) -> None:
            outcome["step"] = step
            if stop.is_set():
                raise KeyboardInterrupt
            updates.put((step, loss, time.monotonic()))

        def work() -> None:
            try:
                outcome["identity"] = self.studio.learn(photo, name, method, total, face, replace=replace,
                                                        if_interrupted=if_interrupted, callback=callback)
            except BaseException as error:  # handed to the page below
                outcome["error"] = error

        resuming = if_interrupted == RESUME and self.studio.interrupted(name or "")
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
            self.stops.pop(key, None)
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
               f"Learned **{identity.name}** ({identity.method}, {total} steps{resumed}). "
               f'Draw it in the Draw tab: "a photo of {identity.name} on a beach".')

    def stop_learning(self, request: gr.Request = None) -> str:
        """Stop this page's learning run (its checkpoint is kept)."""
        if not self._stop("learn", request):
            return "Nothing is being learned from this page."
        return "Stopping: saving the checkpoint…"

    # --- draw ------------------------------------------------------------------------------------

    @shown_to_user("Not drawn")
    def draw(self, prompt: str, identities: list[str] | None, negative_prompt: str, seed: int, steps: int,
             guidance: float, width: int | None, height: int | None, count: int, scene: Any = None,
             strength: float | None = None, control: str | None = None, control_kind: str = AS_GIVEN,
             controlnet: str | None = None, control_scale: float = defaults.CONTROL_SCALE, places: dict | None = None,
             request: gr.Request = None,
             progress: gr.Progress = gr.Progress()) -> tuple[list, list[str]]:  # noqa: B008 (Gradio's way)
        """Draw the identities from a prompt; the gallery and the PNG files (with their text chunks). Gradio's
        progress shows "image i of n · step s of S" over the gallery; **Stop** ends the drawing there, and
        the pictures finished before it are kept and shown. Into a scene photo, in a pose, each identity in its
        place: the "Scene and control" inputs (`control_tab`)."""
        key, stop = self._stop_signal("draw", request)

        def on_step(image: int, step: int, steps_in_all: int) -> bool:
            images = int(count)  # checked by the studio before the first step
            progress((image * steps_in_all + step, images * steps_in_all), unit="steps",
                     desc=f"image {image + 1} of {images} · step {step} of {steps_in_all}")
            return stop.is_set()

        try:
            result = self.studio.draw(prompt, identities or [], negative_prompt=negative_prompt, seed=seed,
                                      steps=steps, guidance=guidance, width=width, height=height, count=count,
                                      on_step=on_step, **drawing_inputs(self.studio, scene, strength, control,
                                                                         control_kind, controlnet, control_scale,
                                                                         places))
        finally:
            self.stops.pop(key, None)
        paths = [str(path) for path in result.paths]
        return [(path, f"seed {seed}") for path, seed in zip(paths, result.seeds)], paths

    @staticmethod
    def drawn(gallery: list | None, count: int) -> tuple[dict, dict]:
        """After a drawing: how many pictures it made (fewer than asked: it was stopped), as the gallery's
        label; the PNG files shown when there are some."""
        shown = len(gallery or [])
        stopped = shown < int(count)
        label = (f"Pictures: stopped, the {shown} finished are kept" if stopped and shown else
                 "Pictures: stopped before the first was finished" if stopped else f"Pictures ({shown})")
        return gr.update(label=label), gr.update(visible=shown > 0)

    def stop_drawing(self, request: gr.Request = None) -> None:
        """Stop this page's drawing after the current step (the pictures finished are kept)."""
        self._stop("draw", request)

    @shown_to_user("No attention view")
    def attention(self, prompt: str, identities: list[str] | None, seed: int, steps: int, guidance: float) -> str:
        """One picture and where each word of the prompt attends."""
        return str(self.studio.attention(prompt, identities or [], seed=seed, steps=steps, guidance=guidance))

    def chosen_identities(self, identities: list[str] | None) -> tuple:
        """How to name the chosen identities in the prompt; the attention view for SeFi-IDE ones. (The prompt
        suggestion is made in the browser: SUGGEST_PROMPT.)"""
        identities = identities or []
        staged = False
        for name in identities:
            try:
                staged = staged or self.studio.stages_of(name) > 0
            except AnybodyError:
                continue
        hint = (f"Write {', '.join(identities)} in the prompt as {'a word' if len(identities) == 1 else 'words'}."
                if identities else "")
        return hint, gr.update(visible=staged)

    @staticmethod
    def name_to_insert(sample: list[str] | None) -> str:
        return sample[0] if sample else ""

    # --- identities ------------------------------------------------------------------------------

    @shown_to_user("No details")
    def details(self, name: str | None) -> dict:
        """What `anybody identities show NAME` prints (the server's file path left out)."""
        if not name:
            return {}
        return {key: value for key, value in self.studio.details(name).items() if key != "file"}

    def details_view(self, details: dict | None) -> str:
        """The chosen identity's face and the details a person reads, as labelled rows."""
        if not details:
            return NO_IDENTITY_CHOSEN
        return details_html(face_html(self.listed.get(str(details.get("name"))), DETAILS_FACE_SIDE),
                            detail_rows(details))

    @staticmethod
    def chosen_row(table: Any, selected: gr.SelectData) -> str:
        """The identity of the table row clicked."""
        row = selected.row_value if selected.row_value else None
        return gr.skip() if not row else str(row[1])

    @shown_to_user("Not exported")
    def export(self, name: str | None, format: str) -> tuple[str, str]:
        """The identity as a file another tool reads (FORMATS), for download, and how to use it."""
        if not name:
            raise UsageError("No identity is chosen", "Choose one in the table first")
        path, hint = self.studio.export(name, format)
        return str(path), export_howto(path.name, hint, str(path.parent))

    @shown_to_user("Not imported")
    def import_file(self, file: str | None, name: str, replace: bool = False) -> str:
        """Add a textual-inversion embedding (.safetensors, .pt, .bin) to the library under a name."""
        if not file:
            raise UsageError("No embedding file was given", "Upload a .safetensors, .pt or .bin embedding")
        identity = self.studio.import_embedding(file, name, replace=bool(replace))
        return f"Imported **{identity.name}** ({identity.token_count} vectors)."

    def ask_removal(self, name: str | None) -> tuple:
        if not name:
            return gr.update(visible=False), ""
        return (gr.update(visible=True),
                f"### Remove {name}?\n\nIts identity file is deleted from the library. This cannot be undone "
                "(an export of it, if you made one, can be imported again).")

    @shown_to_user("Not removed")
    def remove(self, name: str | None) -> tuple:
        """Delete an identity from the library."""
        if not name:
            raise UsageError("No identity is chosen", "Choose one in the table first")
        self.studio.remove(name)
        return gr.update(visible=False), f"Removed **{name}**."


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
        identities, names = _draw_tab(events, studio)
        swap_tab(events, studio)
        tab, table, chosen, changed = _identities_tab(events)

        refresh = {"fn": events.library_views, "inputs": [chosen], "outputs": [table, identities, names, chosen],
                   **PRIVATE}
        page.load(**refresh)
        page.load(None, js=REMEMBER_CARET, **PRIVATE)
        tab.select(**refresh)
        for dependency in (learned, *changed):
            dependency.then(**refresh)
    return page


def _learn_tab(events: Events) -> Any:
    """Photo (upload or webcam), face, name, method and steps on the left, Learn and Stop under them; the
    progress, the faces found and the face that will be learned on the right. Returns the event after which
    learning is done."""
    with gr.Tab("Learn", id="learn", elem_id="tab-learn"), gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=360):
            photo = photo_input(label="Photo", elem_id="photo", sources=["upload", "webcam"], height=280,
                                format="png")
            sample = gr.Button("Use the sample photo", elem_id="use-sample", size="sm")
            face = gr.Dropdown(label="Face to learn", elem_id="face", choices=[], interactive=False,
                               allow_custom_value=True, visible=False)
            faces_note = gr.Markdown(elem_id="faces-note")
            with gr.Row(equal_height=True):
                name = gr.Textbox(label="Name", elem_id="name", placeholder="alice", scale=3,
                                  info="ASCII letters, digits, - and _, starting with a letter")
                replace = gr.Checkbox(False, label="Replace", elem_id="replace", scale=1, min_width=120,
                                      info="learn a taken name again")
            with gr.Row(equal_height=True):
                method = gr.Dropdown(method_choices(), value=DEFAULT_METHOD, label="Method", elem_id="method",
                                     scale=3)
                steps = number_field(limits.LEARN_STEPS, learning_steps(DEFAULT_METHOD), "steps", scale=1,
                                min_width=120)
            if_interrupted = gr.Radio([RESUME, START_OVER], value=RESUME, visible=False,
                                      label="An interrupted run of this name left a checkpoint",
                                      elem_id="if-interrupted")
            with gr.Row():
                learn_button = gr.Button("Learn", variant="primary", elem_id="learn", scale=3)
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop", scale=1)
        with gr.Column(scale=1, min_width=360):
            learn_progress = gr.HTML(empty_state(
                "1. Upload a photo of one person (or take one with the webcam, or use the sample photo).",
                "2. Check the face that will be learned, below.", "3. Give it a name and press Learn."),
                elem_id="learn-progress", elem_classes="progress-line")
            learn_status = gr.Markdown(elem_id="learn-status")
            with gr.Row():
                annotated = gr.Image(label="Faces found", elem_id="faces", interactive=False, format="png",
                                     height=280)
                aligned = gr.Image(label="The face learned (left)", elem_id="aligned", interactive=False,
                                   format="png", height=280)

    previews = [annotated, aligned, face, faces_note]
    # The previews describe the photo shown: cleared in the browser as soon as the user changes it, then
    # filled (or refused) once per new photo: an upload or a webcam picture (Gradio's `change` fires twice
    # when a photo replaces another), or the sample.
    photo.input(None, js=f"() => {{ ({CLOSE_MESSAGES})(); return [null, null, null, '']; }}", outputs=previews,
                **PRIVATE)
    photo.upload(events.faces, inputs=[photo], outputs=previews, api_name="faces", concurrency_id="faces")
    sample.click(events.use_sample, outputs=photo, **PRIVATE).then(
        events.faces, inputs=[photo], outputs=previews, api_visibility="private", concurrency_id="faces")
    face.input(events.faces, inputs=[photo, face], outputs=previews, api_visibility="private",
               concurrency_id="faces")
    method.change(learning_steps, inputs=method, outputs=steps, **PRIVATE)
    name.change(events.interrupted_choice, inputs=name, outputs=if_interrupted, trigger_mode="always_last",
                **PRIVATE)
    stop_button.click(events.stop_learning, outputs=learn_status, api_name="stop", concurrency_limit=None)
    learn_button.click(None, js=CLOSE_MESSAGES, **PRIVATE)
    return (learn_button.click(events.learn, inputs=[photo, face, name, method, steps, if_interrupted, replace],
                               outputs=[learn_progress, learn_status], api_name="learn", **MODEL_JOB)
            .then(events.interrupted_choice, inputs=name, outputs=if_interrupted, **PRIVATE))


def _draw_tab(events: Events, studio: Studio) -> tuple[gr.Dropdown, gr.Dataset]:
    """Identities, prompt, Draw and Stop, then the settings, on the left; the pictures on the right. Returns
    the chooser of identities and the names to insert (views of the library)."""
    with gr.Tab("Draw", id="draw", elem_id="tab-draw"), gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=360):
            identities = gr.Dropdown(label="Identities", multiselect=True, elem_id="identities",
                                     allow_custom_value=True, info="who is in the picture")
            prompt = gr.Textbox(label="Prompt", elem_id="prompt", lines=3, placeholder="a photo of alice on a beach")
            names = gr.Dataset(label="Names in the library: click one to put it in the prompt", elem_id="names",
                               components=[gr.Textbox(visible=False)], samples=[], samples_per_page=24,
                               visible=False)
            name_to_insert = gr.Textbox(visible=False)
            prompt_hint = gr.Markdown(elem_id="prompt-hint")
            negative = gr.Textbox(label="Negative prompt", elem_id="negative", placeholder="blurry, deformed")
            with gr.Row():
                draw_button = gr.Button("Draw", variant="primary", elem_id="draw", scale=3)
                stop_button = gr.Button("Stop", variant="stop", elem_id="stop-drawing", scale=1)
            with gr.Row():
                count = number_field(limits.IMAGES, defaults.NUM_IMAGES, "count", min_width=100)
                draw_steps = number_field(limits.DRAW_STEPS, defaults.STEPS, "draw-steps", min_width=100)
                guidance = number_field(limits.GUIDANCE, defaults.GUIDANCE, "guidance", min_width=100)
            with gr.Row():
                seed = number_field(limits.SEED, defaults.SEED, "seed", info="image i: seed + i", min_width=100)
                width = number_field(limits.WIDTH, 0, "width", info=f"0: {studio.native_size} px", min_width=100)
                height = number_field(limits.HEIGHT, 0, "height", info=f"0: {studio.native_size} px", min_width=100)
            scene = scene_and_control(studio, identities)
        with gr.Column(scale=1, min_width=360):
            gallery = gr.Gallery(label=NO_PICTURES, elem_id="gallery", columns=2, format="png", type="filepath",
                                 interactive=False, height=560, object_fit="contain")
            files = gr.File(label="PNG files (prompt, seed and model in their text chunks)", file_count="multiple",
                            elem_id="draw-files", interactive=False, visible=False)
            with gr.Accordion("Where each word attends (SeFi-IDE)", visible=False,
                              elem_id="attention-box") as attention_box:
                attention_button = gr.Button("Show the attention view", elem_id="attention")
                attention_map = gr.Image(label="Attention", elem_id="attention-map", interactive=False,
                                         format="png")

    identities.change(None, js=SUGGEST_PROMPT, inputs=[identities, prompt], outputs=prompt, **PRIVATE)
    identities.change(events.chosen_identities, inputs=[identities], outputs=[prompt_hint, attention_box],
                      **PRIVATE)
    names.click(events.name_to_insert, inputs=names, outputs=name_to_insert, **PRIVATE).then(
        None, js=INSERT_NAME, inputs=[name_to_insert, prompt, identities], outputs=[prompt, identities], **PRIVATE)
    draw_button.click(None, js=CLOSE_MESSAGES, **PRIVATE)
    draw_button.click(events.draw, inputs=[prompt, identities, negative, seed, draw_steps, guidance, width, height,
                                           count, *scene.inputs], outputs=[gallery, files], api_name="draw",
                      **MODEL_JOB).success(
        events.drawn, inputs=[gallery, count], outputs=[gallery, files], **PRIVATE)
    stop_button.click(events.stop_drawing, api_name="stop_drawing", concurrency_limit=None)
    attention_button.click(events.attention, inputs=[prompt, identities, seed, draw_steps, guidance],
                           outputs=attention_map, api_name="attention", **MODEL_JOB)
    return identities, names


def _identities_tab(events: Events) -> tuple[gr.Tab, gr.Dataframe, gr.Dropdown, list[Any]]:
    """The library table (a row click chooses) and import on the left; the chosen identity's face, details,
    export and removal on the right, the removal confirmed in a dialog. Returns the tab, the table, the chosen
    identity and the events that change the library."""
    with gr.Tab("Identities", id="identities", elem_id="tab-identities") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                table = gr.Dataframe(headers=TABLE_COLUMNS, datatype=["markdown"] + ["str"] * 5, interactive=False,
                                     elem_id="library", wrap=True, label="Library: click a row to choose it",
                                     show_search="search", max_height=560)
                library_status = gr.Markdown(elem_id="library-status")
                with gr.Accordion("Import an embedding", open=False, elem_id="import-box"):
                    import_file_input = gr.File(label="Embedding (.safetensors, .pt, .bin)", elem_id="import-file",
                                                type="filepath", height=120)
                    with gr.Row(equal_height=True):
                        import_name = gr.Textbox(label="Name in the library", elem_id="import-name", scale=3)
                        import_replace = gr.Checkbox(False, label="Replace", elem_id="import-replace", scale=1,
                                                     min_width=120, info="a taken name")
                    import_button = gr.Button("Import", elem_id="import")
            with gr.Column(scale=2, min_width=360):
                chosen = gr.Dropdown(label="Identity", elem_id="chosen", allow_custom_value=True)
                rows = gr.HTML(NO_IDENTITY_CHOSEN, elem_id="details")
                with gr.Accordion("Show all (the file's metadata)", open=False, elem_id="details-all"):
                    shown = gr.JSON(label="Everything the file says", elem_id="details-json")
                export_format = gr.Dropdown([(f"{spec.tools}", key) for key, spec in FORMATS.items()],
                                            value=next(iter(FORMATS)), label="Export for", elem_id="export-format")
                with gr.Row():
                    export_button = gr.Button("Export", variant="primary", elem_id="export", scale=2)
                    remove_button = gr.Button("Remove…", variant="stop", elem_id="remove", scale=1)
                exported = gr.File(label="Exported file", elem_id="export-file", interactive=False, visible=False)
                export_hint = gr.HTML(elem_id="export-howto")
        with gr.Column(visible=False, elem_id="confirm-dialog") as dialog, gr.Column():
            confirm_text = gr.Markdown(elem_id="confirm-text")
            with gr.Row():
                keep_button = gr.Button("Keep it", elem_id="keep")
                confirm_button = gr.Button("Yes, remove", variant="stop", elem_id="confirm-remove")

    table.select(events.chosen_row, inputs=table, outputs=chosen, **PRIVATE)
    chosen.change(events.details, inputs=chosen, outputs=shown, api_name="details", concurrency_limit=None).then(
        events.details_view, inputs=shown, outputs=rows, **PRIVATE)
    for action in (export_button, import_button, confirm_button):
        action.click(None, js=CLOSE_MESSAGES, **PRIVATE)
    export_button.click(events.export, inputs=[chosen, export_format], outputs=[exported, export_hint],
                        api_name="export", concurrency_limit=None).success(
        lambda: gr.update(visible=True), outputs=exported, **PRIVATE)
    remove_button.click(events.ask_removal, inputs=chosen, outputs=[dialog, confirm_text], **PRIVATE)
    keep_button.click(lambda: gr.update(visible=False), outputs=dialog, **PRIVATE)
    removed = confirm_button.click(events.remove, inputs=chosen, outputs=[dialog, library_status],
                                   api_name="remove", **MODEL_JOB)
    imported = import_button.click(events.import_file, inputs=[import_file_input, import_name, import_replace],
                                   outputs=library_status, api_name="import", **MODEL_JOB)
    return tab, table, chosen, [removed, imported]
