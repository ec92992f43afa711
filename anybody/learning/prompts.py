"""The training prompts: textual inversion's "imagenet templates small", as Celeb Basis uses them.

Each is filled with "face of <id> <id>_1 person": the identity's tokens between the words that tell the
model it is a face of a person (METHOD.md §1).
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


def identity_prompts(tokens: Sequence[str], class_word: str = "person",
                     templates: Sequence[str] = CELEB_BASIS_TEMPLATES) -> list[str]:
    """Every template filled with "face of <tokens> <class word>"."""
    phrase = f"face of {' '.join(tokens)} {class_word}"
    return [template.format(phrase) for template in templates]
