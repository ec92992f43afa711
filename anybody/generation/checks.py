"""The checks of drawing arguments that need no model, kept free of torch and diffusers so that the command
line refuses a bad argument at once (`anybody generate -n 0` answers before any library is imported): the
numbers and texts, and the identities (in the library, named once, named in the prompt) with the model that
will draw them, read from their files' headers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from anybody.attention.regions import check_regions
from anybody.errors import UsageError, require_at_least, require_finite, require_steps
from anybody.generation import defaults
from anybody.identity.names import check_distinct, rewrite_prompt

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
    require_steps(steps, "--steps", defaults.STEPS)
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


def check_identities(prompt: str, identities: Sequence[str | os.PathLike[str]],
                     library: str | os.PathLike[str] | None, model: str | None,
                     regions: Mapping[str, object] | None = None) -> str | None:
    """The identities (library names or files) read and checked, each named once and in the prompt, and the
    model to draw them with: `model` when given, else the one they say (`families.drawing_model`), else a
    UsageError saying --model is needed; None without identities (the default model then). `regions` may
    name only identities drawn. Only the files' contents are read (numpy), so a refusal comes before torch
    is imported."""
    from anybody.identity.contents import read_contents
    from anybody.identity.families import drawing_model
    from anybody.identity.library import resolve_identity

    contents = [read_contents(resolve_identity(item, library)) for item in identities]
    names = [identity.name for identity in contents]
    check_distinct(names)
    check_names_used(prompt, names)
    check_regions(regions, names)
    if model is not None or not contents:
        return model
    return drawing_model([(identity.name, identity.metadata,
                           [shape[1] for shape in identity.shapes("embeddings").values()]) for identity in contents])


def check_names_used(prompt: str, names: Sequence[str]) -> None:
    """Every identity is named in the prompt as a word (else its tokens would never be drawn)."""
    unused = [name for name in names if rewrite_prompt(prompt, [name]) == prompt]
    if unused:
        raise UsageError(f"The prompt does not mention {', '.join(unused)}",
                         f'Use the identity\'s name as a word in the prompt, e.g. "a photo of {unused[0]}"')
