"""The two scorers the evaluation runs on every generated image: a face recognizer and a CLIP model.

The face scorer is chosen apart from the face encoder a method learned with (docs/method.md §6: score identity
with a recognizer the method did not train with); on this project's machines only dlib installs, so the
report warns when both are the same network. CLIP-T needs real CLIP weights (a Hub id or a local folder);
without them the column stays empty and the report says why: a number is never invented.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anybody.face import FaceEncoder, find_faces, get_face_encoder, prepare_face

log = logging.getLogger("anybody")

@dataclass
class FaceScorer:
    """Finds every face in an image (dlib) and describes each with the scoring recognizer."""

    encoder: FaceEncoder
    detector: str = "hog"

    @classmethod
    def named(cls, spec: str, detector: str = "hog") -> FaceScorer:
        return cls(get_face_encoder(spec), detector)

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def same_person_distance(self) -> float:
        """The descriptor distance under which the recognizer calls two faces one person."""
        return self.encoder.same_person_distance

    def reference(self, photo: str | os.PathLike[str]) -> np.ndarray:
        """The descriptor of the photo's largest face (a PhotoError when it has none)."""
        return prepare_face(photo, detector=self.detector, encoder=self.encoder).descriptor

    def faces(self, image: Image.Image) -> list[np.ndarray]:
        """The descriptor of every face found in `image`, largest first (empty when none)."""
        image = image.convert("RGB")
        found = find_faces(image, detector=self.detector)
        if not found:
            return []
        return list(self.encoder.encode([self.encoder.crop(image, face) for face in found]))


def same_network(scorer: str, learning: str) -> bool:
    """Whether the scoring recognizer and a method's learning face encoder are the same network."""
    def identify(spec: str) -> str:
        return spec if spec == "dlib" else str(Path(spec).expanduser().resolve())
    return identify(scorer) == identify(learning)


class ClipScorer:
    """CLIP-T: cosine between a CLIP model's text and image embeddings."""

    def __init__(self, source: str, device: str | torch.device = "cpu") -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.source = source
        self.device = torch.device(device)
        # low_cpu_mem_usage: transformers 4.x loads through accelerate only when asked (5.x always does)
        self.model = CLIPModel.from_pretrained(source, low_cpu_mem_usage=True).to(self.device).eval()
        self.processor = CLIPProcessor.from_pretrained(source)

    @torch.no_grad()
    def scores(self, texts: list[str], images: list[Image.Image]) -> list[float]:
        """One cosine per (text, image) pair."""
        if len(texts) != len(images):
            raise ValueError(f"one text per image is needed (got {len(texts)} and {len(images)})")
        if not images:
            return []
        inputs = self.processor(text=texts, images=[image.convert("RGB") for image in images], return_tensors="pt",
                                padding=True, truncation=True)
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        text = _embedding(self.model.get_text_features(input_ids=inputs["input_ids"],
                                                       attention_mask=inputs.get("attention_mask")))
        image = _embedding(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.model.dtype)))
        return torch.nn.functional.cosine_similarity(text.float(), image.float(), dim=-1).tolist()


def _embedding(output: object) -> torch.Tensor:
    """The projected embedding, whether a transformers version returns a tensor or a model output."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output  # type: ignore[attr-defined]


def load_clip(source: str | None, device: str | torch.device = "cpu") -> tuple[ClipScorer | None, str]:
    """The CLIP scorer and "", or None and the reason the CLIP-T column will be empty."""
    if not source:
        return None, ("no CLIP model was given (--clip HUB_ID or a local folder, e.g. "
                      "openai/clip-vit-large-patch14, the papers' ViT-L/14)")
    try:
        return ClipScorer(source, device), ""
    except Exception as error:  # any loading failure (offline, missing files, not a CLIP model) leaves it empty
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning("CLIP-T is left empty: the CLIP model %s could not be loaded (%s)", source, first_line)
        return None, f"the CLIP model {source} could not be loaded ({first_line})"
