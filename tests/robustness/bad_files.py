"""The bad (and odd but fine) inputs of the table "Bad input: what you see", made in code.

Every file is written into one folder, under the name the table's rows use, so that the messages the
table quotes (which name the file) are exactly what the CLI prints when run from that folder.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[2] / "anybody" / "data" / "sample_face.jpg"
OTHER_PERSON = Path(__file__).resolve().parents[1] / "data" / "grace_hopper.jpg"
FACE_BOX = (176, 77, 266, 167)  # the sample's one face (left, top, right, bottom), 90 px
PORTRAIT = (96, 0, 352, 256)  # a 256 px crop of the sample around that face: half the detection time


def sample() -> Image.Image:
    with Image.open(SAMPLE) as image:
        return image.convert("RGB")


def portrait() -> Image.Image:
    """The sample's face with some of the photo around it, 256 x 256, the face at `portrait_face_box()`."""
    return sample().crop(PORTRAIT)


def portrait_face_box() -> tuple[int, int, int, int]:
    left, top = PORTRAIT[:2]
    return (FACE_BOX[0] - left, FACE_BOX[1] - top, FACE_BOX[2] - left, FACE_BOX[3] - top)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG that claims `width` x `height` but holds a few bytes of pixels (an image bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def make_photos(folder: Path) -> None:
    """Every photo row's file."""
    photo = portrait()
    (folder / "photos").mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    whole = SAMPLE.read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.jpg").write_text("Holiday notes: bring the camera.\n" * 20)
    (folder / "bomb.png").write_bytes(png_header_only(10_000, 8_000))
    photo.save(folder / "animated.gif", save_all=True, append_images=[photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)],
               duration=100, loop=0)
    photo.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    grey = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    Image.fromarray(grey).save(folder / "16bit.png")
    photo.quantize(256).save(folder / "palette.png")
    rgba = photo.convert("RGBA")
    alpha = np.full((photo.height, photo.width), 255, np.uint8)
    alpha[:, :60] = alpha[:, -60:] = 0  # transparent margins: composited on white
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels are stored turned left
    photo.transpose(Image.Transpose.ROTATE_90).save(folder / "exif-rotated.jpg", exif=exif, quality=95)
    ramp = np.linspace(0, 255, 400, dtype=np.float64)
    Image.fromarray(np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1).astype(np.uint8)).save(
        folder / "no-face.png")
    canvas = Image.new("RGB", (480, 256), (128, 128, 128))
    canvas.paste(photo, (0, 0))
    canvas.paste(photo.resize((205, 205)), (270, 25))  # the same face at 72 px
    canvas.save(folder / "two-faces.jpg", quality=95)
    photo.resize((150, 150)).save(folder / "small-face.jpg", quality=95)
    box = portrait_face_box()
    photo.crop((box[0] + 8, 40, photo.width, photo.height)).save(folder / "face-at-border.jpg", quality=95)
    wide = Image.new("RGB", (3600, 180), (128, 128, 128))  # 20:1, the face 90 px
    wide.paste(sample().crop((131, 32, 311, 212)), (1700, 0))
    wide.save(folder / "panorama.jpg", quality=95)
    Image.new("RGB", (5000, 2), (128, 128, 128)).save(folder / "strip.png")


def identity(name: str, width: int = 32, family: str = "sd1", base_model: str = "tiny"):
    from anybody.identity import Identity

    generator = torch.Generator().manual_seed(0)
    return Identity(name=name, encoder_embeddings={"text_encoder": torch.randn(2, width, generator=generator)},
                    metadata={"method": "celeb-basis", "base_model": base_model, "family": family})


def make_identity_files(folder: Path) -> None:
    """A library `lib` holding alice (fits the tiny model) and wide (an SD 2.x identity); a library `imports`
    holding imp (2 tokens) and solo (1 token), embeddings imported from 32-wide files (no model, no family);
    broken files."""
    from safetensors.torch import save_file

    from anybody.identity import Identity

    for name, tokens in (("imp", 2), ("solo", 1)):
        Identity(name=name, encoder_embeddings={"text_encoder": torch.randn(tokens, 32)},
                 metadata={"method": "imported", "source_format": "kohya"}).save(library=folder / "imports")
    identity("alice").save(library=folder / "lib")
    identity("wide", width=1024, family="sd2", base_model="stabilityai/stable-diffusion-2-1").save(
        library=folder / "lib")
    whole = identity("alice").save(folder / "alice-copy.safetensors").read_bytes()
    (folder / "truncated.safetensors").write_bytes(whole[: len(whole) // 2])
    future = identity("future")
    future.save(folder / "future.safetensors")
    _rewrite_metadata(folder / "future.safetensors", {"format_version": "99"})
    identity("alice").save(folder / "damaged.safetensors")
    tensors, metadata = _read(folder / "damaged.safetensors")
    tensors["text_encoder.embeddings"][0, 0] += 1.0
    save_file(tensors, str(folder / "damaged.safetensors"), metadata)
    nan = identity("nan")
    nan.save(folder / "nan.safetensors")
    tensors, metadata = _read(folder / "nan.safetensors")
    tensors["text_encoder.embeddings"][0, 0] = float("nan")
    save_file(tensors, str(folder / "nan.safetensors"), metadata)
    (folder / "alice-copy.safetensors").unlink()
    # Embedding files to import.
    save_file({"emb_params": torch.randn(2, 32)}, str(folder / "embedding.safetensors"))
    whole = (folder / "embedding.safetensors").read_bytes()
    (folder / "truncated-embedding.safetensors").write_bytes(whole[: len(whole) - 40])
    save_file({"emb_params": torch.tensor([[float("inf")] * 32])}, str(folder / "inf-embedding.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(2, 32)}, "payload": Payload(folder / "PAYLOAD-RAN")},
               folder / "evil.pt")
    # diffusers' SDXL training output (textual_inversion_sdxl.py) with its first file missing
    (folder / "sdxl-ti").mkdir()
    save_file({"<cat-toy>": torch.randn(2, 40)}, str(folder / "sdxl-ti" / "learned_embeds_2.safetensors"),
              {"format": "pt"})
    # what the original textual-inversion code (rinongal/textual_inversion) saves: an nn.ParameterDict inside
    torch.save({"string_to_token": {"*": torch.tensor(265)},
                "string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(torch.randn(1, 32))})},
               folder / "embeddings_gs-6099.pt")


class Payload:
    """Pickled, it asks the unpickler to create a marker file: it exists only if the payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _read(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata()  # noqa: SIM118


def _rewrite_metadata(path: Path, changes: dict[str, str]) -> None:
    from safetensors.torch import save_file

    tensors, metadata = _read(path)
    save_file(tensors, str(path), {**metadata, **changes})


def make_models(folder: Path) -> None:
    (folder / "not-a-model").mkdir()
    (folder / "not-a-model" / "readme.txt").write_text("just a folder\n")
    (folder / "broken.safetensors").write_bytes(b"\x00\x01garbage" * 1000)


def make_batch_files(folder: Path) -> None:
    """`learn-batch` inputs: a folder naming one person twice, CSVs without a column, with a bad row, with a
    name twice."""
    (folder / "people").mkdir()
    shutil.copy(SAMPLE, folder / "people" / "alice.jpg")
    shutil.copy(SAMPLE, folder / "people" / "Alice.png")
    (folder / "no-name.csv").write_text("photo,person\nme.jpg,alice\n")
    (folder / "bad-row.csv").write_text("photo,name\nme.jpg,alice,sefi\n")
    (folder / "twice.csv").write_text("photo,name\nme.jpg,alice\nme.jpg,Alice\n")


def make_several_photos(folder: Path) -> None:
    """For `learn me.jpg me-mirrored.jpg someone-else.jpg --same-person`: the sample's face mirrored, and a
    real other person (Grace Hopper's public-domain portrait, tests/data/README.md), both cropped small."""
    portrait().transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "me-mirrored.jpg", quality=95)
    with Image.open(OTHER_PERSON) as other:
        other.convert("RGB").crop((96, 40, 416, 360)).save(folder / "someone-else.jpg", quality=95)


def make_control_files(folder: Path) -> None:
    """A 96 x 64 scene and masks for it (another shape, half the size, all black, all white), and an SD 2.1
    ControlNet's folder with only its config (enough to refuse it: the config is read before the weights)."""
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / "scene.png")
    half = Image.new("L", (48, 32), 0)
    half.paste(255, (10, 8, 30, 24))
    half.save(folder / "mask-half-size.png")
    Image.new("L", (64, 64), 0).save(folder / "mask-square.png")
    Image.new("L", (96, 64), 0).save(folder / "mask-black.png")
    Image.new("L", (96, 64), 255).save(folder / "mask-white.png")
    (folder / "controlnet-sd21").mkdir()
    config = {"_class_name": "ControlNetModel", "cross_attention_dim": 1024, "in_channels": 4,
              "block_out_channels": [320, 640, 1280, 1280], "attention_head_dim": [5, 10, 20, 20],
              "use_linear_projection": True}
    (folder / "controlnet-sd21" / "config.json").write_text(json.dumps(config))


def make_all(folder: Path) -> Path:
    make_photos(folder)
    make_control_files(folder)
    make_several_photos(folder)
    make_batch_files(folder)
    make_identity_files(folder)
    make_models(folder)
    return folder
