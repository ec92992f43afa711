"""The checks of drawing arguments that need no model, kept free of torch and diffusers so that the command
line refuses a bad argument at once (`anybody generate -n 0` answers before any library is imported)."""

from __future__ import annotations

from anybody.errors import UsageError, require_at_least, require_finite
from anybody.generation import defaults

MAX_SIDE = 4096
"""The largest height or width drawn, in pixels: 4x SDXL's own size; beyond it no model draws a coherent
picture and the latents alone would fill a GPU."""


def check_arguments(prompt: str, count: int, steps: int, guidance: float, height: int | None,
                    width: int | None, negative_prompt: str | None = None,
                    batch_size: int = defaults.BATCH_SIZE) -> None:
    """A UsageError for a prompt or number no model could draw with."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise UsageError("The prompt is empty", 'Describe the picture, e.g. "a photo of alice on a beach"')
    check_text(prompt, "prompt")
    if negative_prompt is not None:
        check_text(negative_prompt, "negative prompt")
    require_at_least(count, 1, "number of images", "-n", defaults.NUM_IMAGES)
    require_at_least(steps, 1, "number of steps", "--steps", defaults.STEPS)
    require_finite(guidance, "guidance scale", "--guidance", defaults.GUIDANCE)
    require_at_least(batch_size, 1, "batch size", "--batch-size", defaults.BATCH_SIZE)
    for label, value in (("height", height), ("width", width)):
        if value is not None and (value < 8 or value % 8):
            raise UsageError(f"The {label} must be a positive multiple of 8 (got {value})",
                             f"Pass --{label} {max(8, round((value or 0) / 8) * 8)}")
        if value is not None and value > MAX_SIDE:
            raise UsageError(f"The {label} can be at most {MAX_SIDE} px (got {value})",
                             f"Pass --{label} {MAX_SIDE} or less; upscale the picture afterwards for more")


def check_text(value: str, label: str) -> None:
    """Bytes that are not UTF-8 on a command line reach Python as lone surrogates (a Latin-1 terminal, say),
    which the tokenizer would refuse with a TypeError deep inside the pipeline."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UsageError(f"The {label} holds bytes that are not UTF-8 text ({ascii(value)[:60]})",
                         "Type it again in a UTF-8 terminal (for example with LANG=C.UTF-8)") from error
