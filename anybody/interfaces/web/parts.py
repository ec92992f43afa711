"""The pieces every tab of the page is built from: fields, the photo input, how a user's mistake is shown, the
settings of events. (The tabs: `app` builds Learn, Draw and Identities, `control_tab` the scene and control
parts of Draw and the Swap tab.)

Import this module only after `server.go_offline()`: Gradio reads its settings from the environment.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import gradio as gr

from anybody.errors import AnybodyError, out_of_memory
from anybody.interfaces.web import limits

log = logging.getLogger("anybody")

MODEL_JOBS = "model"  # the concurrency group of every event that uses the model: one at a time
OUT_OF_MEMORY_FIX = ("Draw smaller pictures (Width, Height); to learn, the app needs a machine with more memory or "
                     "a smaller model")
PRIVATE = {"api_visibility": "private", "concurrency_limit": None}  # page plumbing, not part of the API
MODEL_JOB = {"concurrency_id": MODEL_JOBS, "concurrency_limit": 1}  # one model job at a time, queued
# A new action closes the messages of earlier ones (they stay until closed: read at the user's pace).
CLOSE_MESSAGES = """() => {
  document.querySelectorAll("[data-testid=toast-close]").forEach((button) => button.click());
}"""


class PageEvents(Protocol):
    """What `shown_to_user` needs of the object whose events it wraps."""

    def in_page_words(self, problem: AnybodyError) -> str: ...


def photo_input(**options: Any) -> gr.Image:
    """The photo field: Gradio's Image (an upload, or a picture from the webcam) that hands the uploaded file
    over as it came. anybody reads photos itself, in every format it reads and with its own message for a
    file that is not one; Gradio's Image would open it first and fail with its own. (The instance's
    `preprocess` is replaced rather than subclassed: Gradio writes a .pyi stub beside the module of every
    component class.)"""
    photo = gr.Image(type="filepath", **options)
    read_by_gradio = photo.preprocess

    def as_uploaded(payload: Any) -> Any:
        path = getattr(payload, "path", None)
        if path and not str(getattr(payload, "url", "") or "").startswith("data:"):
            return path
        return read_by_gradio(payload)

    photo.preprocess = as_uploaded
    return photo


def users_problem(error: BaseException) -> AnybodyError | None:
    """The error as a problem the user can fix (an AnybodyError, or running out of memory, with the page's fix
    for it); None for a bug."""
    if isinstance(error, AnybodyError):
        return error
    memory = out_of_memory(error)
    return None if memory is None else AnybodyError(memory.problem, OUT_OF_MEMORY_FIX)


def shown_to_user(title: str) -> Callable[[Callable], Callable]:
    """Turn the AnybodyError of an event (a method or a generator method of `Events`) into the page's one
    message, a toast, and one log line that starts with `title` (what did not happen); anything else is a
    bug, which Gradio shows as "Error" and the terminal as a traceback."""

    def decorate(method: Callable) -> Callable:
        def shown(self: PageEvents, error: BaseException) -> BaseException:
            problem = users_problem(error)
            if problem is None:
                return error
            message = self.in_page_words(problem)
            log.info("%s: %s", title, message)  # one line in the terminal, no traceback
            return gr.Error(html.escape(message, quote=False), title=title, print_exception=False,
                            duration=None)  # stays until closed: a user reads it at their own pace

        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def stream(self: PageEvents, *args: Any, **kwargs: Any) -> Iterator:
                try:
                    yield from method(self, *args, **kwargs)
                except (AnybodyError, RuntimeError, MemoryError) as error:
                    raise shown(self, error) from None

            return stream

        @functools.wraps(method)
        def call(self: PageEvents, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (AnybodyError, RuntimeError, MemoryError) as error:
                raise shown(self, error) from None

        return call

    return decorate


def empty_state(*lines: str) -> str:
    """What an output shows before there is anything: what to do to fill it."""
    return '<div class="empty-state">' + "".join(f"<p>{html.escape(line)}</p>" for line in lines) + "</div>"


def number_field(bound: limits.Bound, value: float, elem_id: str, **options: Any) -> gr.Number:
    """A number field of `limits`: its label, and its range said under it. The range is checked by the studio
    (anybody's message, naming the field), not by Gradio's own bounds."""
    low, high = (f"{edge:g}" for edge in (bound.minimum, bound.maximum))
    return gr.Number(value, label=bound.label, precision=0 if bound.whole else None, step=bound.step,
                     elem_id=elem_id, info=options.pop("info", f"{low} to {high}"), **options)
