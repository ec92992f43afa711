"""Which Stable Diffusion family an identity is for, and which model draws it when no model is named.

An identity learned here records the model it was learned on and that model's family. A textual-inversion
embedding imported from another tool names no model, so its base model is not known; its family follows
from its token widths, which are its model's text-encoder widths: 768 is SD 1.x (CLIP ViT-L), 1024 SD 2.x
(OpenCLIP ViT-H), 768 and 1280 SDXL (both). Such an identity is drawn with ANYBODY_MODEL, else with its
family's own model (`settings.FAMILY_MODELS`); with neither, the one line says that `--model` is needed.
Plain data and text: no model library is imported here, so the command line decides before loading one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from anybody import settings
from anybody.errors import UsageError

log = logging.getLogger("anybody")

FAMILY_WIDTHS = {(768,): "sd1", (1024,): "sd2", (768, 1280): "sdxl"}
"""Each family's text-encoder widths, in the encoders' order."""
FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}
NOT_KNOWN = ("", "unknown")
"""What identity files once recorded for a base model or family nobody knew: read as not known."""


def known(value: object) -> str | None:
    """A recorded base model or family, or None where the file does not say (or says "unknown")."""
    return value if isinstance(value, str) and value not in NOT_KNOWN else None


def family_from_widths(widths: Sequence[int]) -> str | None:
    """"sd1", "sd2" or "sdxl" for a family's text-encoder widths; None for any other widths."""
    return FAMILY_WIDTHS.get(tuple(widths))


def family_of(metadata: Mapping[str, object], widths: Sequence[int]) -> str | None:
    """The family an identity records, else the one its widths say, else None."""
    return known(metadata.get("family")) or family_from_widths(widths)


Facts = tuple[str, Mapping[str, object], Sequence[int]]
"""What an identity's file says of it, enough to choose its model: its name, metadata and token widths."""


def drawing_model(identities: Sequence[Facts], *, say: bool = True) -> str:
    """The model that draws these identities when none is named: the first known base model; else
    ANYBODY_MODEL; else the first identity's family's model (either said in an INFO line, with `say`). A
    UsageError when none of these is there: the identity's widths fit no family anybody knows."""
    for _, metadata, _ in identities:
        base_model = known(metadata.get("base_model"))
        if base_model is not None:
            return base_model
    name, metadata, widths = identities[0]
    unnamed = f"{name} does not say which model it was made for"
    chosen = settings.chosen_model()
    if chosen is not None:
        if say:
            log.info("%s: drawing with ANYBODY_MODEL, %s.", unnamed, chosen)
        return chosen
    family = family_of(metadata, widths)
    if family in settings.FAMILY_MODELS:
        if say:
            log.info("%s: drawing with the %s model %s (--model chooses another).", unnamed, FAMILY_NAMES[family],
                     settings.FAMILY_MODELS[family])
        return settings.FAMILY_MODELS[family]
    shown = " and ".join(str(width) for width in widths)
    raise UsageError(f"The identity {name} does not say which model it was made for, and its {shown}-wide "
                     "tokens fit no model family anybody knows (SD 1.x 768, SD 2.x 1024, SDXL 768 and 1280)",
                     f"Pass --model with a model whose text encoder is {shown} wide, or set ANYBODY_MODEL")

