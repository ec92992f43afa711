"""The training prompts of each method.

Celeb Basis fills textual inversion's "imagenet templates small" with "face of <id> <id>_1 person": the
identity's tokens between the words that say it is a face of a person (METHOD.md §1). SeFi-IDE writes
its seven templates around the token itself (METHOD.md §2). The reference prompts of the face-wise
attention loss put the class word in place of each identity token, so both prompts have the same length
and every token map lines up.
"""

from __future__ import annotations

from collections.abc import Sequence

CELEB_BASIS_TEMPLATES = (
    "a photo of a {}",
    "a rendering of a {}",
    "a cropped photo of the {}",
    "the photo of a {}",
    "a photo of a clean {}",
    "a photo of a dirty {}",
    "a dark photo of the {}",
    "a photo of my {}",
    "a photo of the cool {}",
    "a close-up photo of a {}",
    "a bright photo of the {}",
    "a cropped photo of a {}",
    "a photo of the {}",
    "a good photo of the {}",
    "a photo of one {}",
    "a close-up photo of the {}",
    "a rendition of the {}",
    "a photo of the clean {}",
    "a rendition of a {}",
    "a photo of a nice {}",
    "a good photo of a {}",
    "a photo of the nice {}",
    "a photo of the small {}",
    "a photo of the weird {}",
    "a photo of the large {}",
    "a photo of a cool {}",
    "a photo of a small {}",
)


SEFI_TEMPLATES = (
    "a photo of a face of {}",
    "a photo of a rendering of a face of {}",
    "a close-up photo of the face of {}",
    "a photo of the cool face of {}",
    "a rendition of the face of {}",
    "an illustration of a face of {}",
    "a depiction of a face of {}",
)


def fill(templates: Sequence[str], phrase: str) -> list[str]:
    return [template.format(phrase) for template in templates]
