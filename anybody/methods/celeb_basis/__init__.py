"""Celeb Basis (arXiv 2306.00926): face features → a small MLP → coefficients in a basis built by PCA
over celebrity-name embeddings → the identity's two tokens. Only the MLP learns."""

from anybody.methods.spec import Method

# Textual inversion's "imagenet templates small", filled with "face of <id> <id>_1 person".
TEMPLATES = (
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

METHOD = Method(
    name="celeb-basis",
    summary="an MLP maps face features to coefficients in a celebrity-name basis (2 tokens)",
    learner="anybody.methods.celeb_basis.learner:CelebBasisLearner",
)
