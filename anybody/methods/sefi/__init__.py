"""SeFi-IDE (arXiv 2402.00631): per-stage key and value tokens made by a small module from "person", and
a face-wise attention loss that keeps the identity's cross-attention on the face."""

from anybody.methods.spec import Method

# SeFi-IDE's seven templates, written around the identity token itself.
TEMPLATES = (
    "a photo of a face of {}",
    "a photo of a rendering of a face of {}",
    "a close-up photo of the face of {}",
    "a photo of the cool face of {}",
    "a rendition of the face of {}",
    "an illustration of a face of {}",
    "a depiction of a face of {}",
)

ATTENTION_LEVEL = 1  # the loss's cross-attention level: 32x32 for SD 1.x at 512 px, the second-highest
ATTENTION_LOSS_WEIGHT = 0.003  # λ of the face-wise attention loss

METHOD = Method(
    name="sefi",
    summary="per-stage key/value tokens and the face-wise attention loss",
    learner="anybody.methods.sefi.learner:StageTokenLearner",
    defaults={"steps": 1000, "learning_rate": 5e-3, "attention_loss": ATTENTION_LOSS_WEIGHT},
)
