"""The "Bad input: what you see" tables (docs/errors.md) are the truth: every row is run through the CLI here.

Each row names an input, the line the user sees (in backticks, `…` for what varies) and the exit code.
The rows are read from docs/errors.md, so the table cannot drift from what anybody prints; `CASES` says how
each row's input is given to the CLI (run in-process, in a folder holding the bad files of `bad_files`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from anybody.interfaces.cli import main
from tests.robustness import bad_files

ERRORS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


@dataclass(frozen=True)
class Row:
    label: str
    seen: str
    exit_code: int

    @property
    def quoted(self) -> list[str]:
        """The lines the user sees, as the table quotes them (empty: nothing but the result)."""
        return re.findall(r"`([^`]+)`", self.seen)


def table_rows() -> list[Row]:
    rows = []
    for line in ERRORS.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or line.startswith(("| Input |", "|---")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"a table row needs 3 cells: {line}"
        rows.append(Row(cells[0], cells[1], int(cells[2])))
    return rows


LATIN_1_ETE = "été".encode("latin-1").decode("utf-8", "surrogateescape")  # as Python's argv holds it
LONG_PROMPT = "a photo of alice " + " ".join(["with a red balloon and a blue kite"] * 12)


def _face(photo: str) -> list[str]:
    return ["face", photo, "--out", "out"]


LEARN = ["learn", "me.jpg", "--model", "tiny", "--library", "lib", "--name"]
GENERATE = ["generate", "a photo of alice", "--identity", "alice", "--library", "lib"]
MIX = ["mix", "alice", "wide", "--name", "mixed", "--library", "lib"]
INPAINT = [*GENERATE, "--image", "scene.png", "--mask"]


def _swap(photo: str, *more: str) -> list[str]:
    return ["swap", photo, "--identity", "alice", "--library", "lib", *more]


CASES: dict[str, list[str]] = {
    # Photos
    "missing path (`missing.jpg`)": _face("missing.jpg"),
    "a folder (`photos`)": _face("photos"),
    "zero bytes (`empty.jpg`)": _face("empty.jpg"),
    "truncated JPEG (`truncated.jpg`, half the file)": _face("truncated.jpg"),
    "not an image (`notes.jpg`, text)": _face("notes.jpg"),
    "image bomb (`bomb.png`: 200 bytes claiming 10000 x 8000)": _face("bomb.png"),
    "animated GIF (`animated.gif`)": _face("animated.gif"),
    "CMYK JPEG (`cmyk.jpg`)": _face("cmyk.jpg"),
    "16-bit PNG (`16bit.png`)": _face("16bit.png"),
    "palette PNG (`palette.png`)": _face("palette.png"),
    "alpha channel (`alpha.png`, transparent margins)": _face("alpha.png"),
    "EXIF-rotated (`exif-rotated.jpg`, stored sideways, orientation 6)": _face("exif-rotated.jpg"),
    "no face (`no-face.png`, a gradient)": _face("no-face.png"),
    "several faces (`two-faces.jpg`)": _face("two-faces.jpg"),
    "face under the minimum size (`small-face.jpg`, a 52 px face)": _face("small-face.jpg"),
    "face at the image border (`face-at-border.jpg`, cut by the left edge)": _face("face-at-border.jpg"),
    "extreme aspect ratio, with a face (`panorama.jpg`, 3600 x 180)": _face("panorama.jpg"),
    "extreme aspect ratio, no room for a face (`strip.png`, 5000 x 2)": _face("strip.png"),
    # Names
    'empty (`--name ""`)': [*LEARN, ""],
    'spaces only (`--name "   "`)': [*LEARN, "   "],
    "path separators and `..` (`--name ../evil`)": [*LEARN, "../evil"],
    "a backslash (`--name 'a\\b'`)": [*LEARN, "a\\b"],
    "control characters (`ali\\x1bce`, an escape character inside)": [*LEARN, "ali\x1bce"],
    "a letter outside ASCII (`--name zoë`)": [*LEARN, "zoë"],
    "over-long (41 characters)": [*LEARN, "a" * 41],
    "a word the learning prompts use (`--name photo`)": [*LEARN, "photo"],
    "a taken name (`--name Alice`, the library has alice)": [*LEARN, "Alice"],
    "the name of an interrupted run, without `--resume` (`--name dora`)": [*LEARN, "dora"],
    # Several photos and mixing
    "several names with `--same-person` (`learn me.jpg me-mirrored.jpg --name ann,bob --same-person`)": [
        "learn", "me.jpg", "me-mirrored.jpg", "--name", "ann,bob", "--same-person", "--library", "lib"],
    "one photo twice (`learn me.jpg ./me.jpg --name ann --same-person`)": [
        "learn", "me.jpg", "./me.jpg", "--name", "ann", "--same-person", "--library", "lib"],
    "a photo of someone else among them (`learn me.jpg me-mirrored.jpg someone-else.jpg --name ann --same-person`)": [
        "learn", "me.jpg", "me-mirrored.jpg", "someone-else.jpg", "--name", "ann", "--same-person", "--model", "tiny",
        "--library", "learned", "--steps", "1", "--views", "1", "--replace"],  # not lib: other rows list it
    "identities of different families (`mix alice wide --name mixed`)": ["mix", "alice", "wide", "--name", "mixed",
                                                                         "--library", "lib"],
    "identities with other numbers of tokens (`mix imp solo --name mixed --library imports`: 2 and 1 tokens)": [
        "mix", "imp", "solo", "--name", "mixed", "--library", "imports"],
    "an identity that is not in the library (`mix alice zed --name mixed`)": ["mix", "alice", "zed", "--name", "mixed",
                                                                            "--library", "lib"],
    "a negative weight (`mix alice wide --weights=-0.5,1.5`)": [*MIX, "--weights=-0.5,1.5"],
    "weights that are all 0 (`--weights 0,0`)": [*MIX, "--weights", "0,0"],
    "not one weight per identity (`--weights 0.7`)": [*MIX, "--weights", "0.7"],
    # Models
    "a wrong path (`--model ./models/sd15`)": ["learn", "me.jpg", "--name", "m", "--model", "./models/sd15"],
    "a folder that is not a diffusers model (`--model not-a-model`)": ["learn", "me.jpg", "--name", "m", "--model",
                                                                        "not-a-model"],
    "a Hub id that is not on this machine, offline (`--model nosuch/model`)": ["learn", "me.jpg", "--name", "m",
                                                                             "--model", "nosuch/model"],
    "a misspelt built-in model (`--model tinyy`)": ["learn", "me.jpg", "--name", "m", "--model", "tinyy"],
    "a download without a network (`anybody models download CompVis/stable-diffusion-v1-4`, offline)": [
        "models", "download", "CompVis/stable-diffusion-v1-4"],
    "a corrupt single file (`--model broken.safetensors`)": ["learn", "me.jpg", "--name", "m", "--model",
                                                              "broken.safetensors"],
    'an identity made for another family or width (`generate "a photo of wide" --identity wide --model tiny`, '
    "wide learned on SD 2.1)": ["generate", "a photo of wide", "--identity", "wide", "--library", "lib", "--model",
                                "tiny"],
    # Identity and embedding files
    "removing a name the library does not have (`identities remove zed --yes`)": ["identities", "remove", "zed",
                                                                                 "--yes", "--library", "lib"],
    "a truncated identity file (`truncated.safetensors`)": ["generate", "a photo of alice", "--identity",
                                                            "truncated.safetensors"],
    "an unknown format version (`future.safetensors`, version 99)": ["identities", "show", "future.safetensors"],
    "a damaged identity file (`damaged.safetensors`: one value changed, its checksum not)": [
        "generate", "a photo of alice", "--identity", "damaged.safetensors"],
    "NaN or infinite values in an identity (`nan.safetensors`)": ["generate", "a photo of nan", "--identity",
                                                                  "nan.safetensors"],
    "a truncated embedding (`import truncated-embedding.safetensors`)": ["import", "truncated-embedding.safetensors",
                                                                         "--name", "dana", "--library", "lib"],
    "infinite values in an embedding (`import inf-embedding.safetensors`)": ["import", "inf-embedding.safetensors",
                                                                             "--name", "dana", "--library", "lib"],
    "a pickle `.pt` carrying code (`import evil.pt`, its payload would write a file)": ["import", "evil.pt", "--name",
                                                                                       "dana", "--library", "lib"],
    "a `.pt` of the original textual-inversion code (`import embeddings_gs-6099.pt`, an `nn.ParameterDict` inside)": [
        "import", "embeddings_gs-6099.pt", "--name", "dana", "--library", "lib"],
    "diffusers' SDXL training output with a file missing (`import sdxl-ti`: `learned_embeds_2.safetensors` alone)": [
        "import", "sdxl-ti", "--name", "dana", "--library", "lib"],
    # Exports
    "an existing file, without `--replace` (`--format comfyui --out embedding.safetensors`)": [
        "export", "alice", "--library", "lib", "--format", "comfyui", "--out", "embedding.safetensors"],
    "a kohya file name that is a CLIP word (`--format kohya --out alice.safetensors`)": [
        "export", "alice", "--library", "lib", "--format", "kohya", "--out", "alice.safetensors"],
    # Generation
    "an unknown identity name (`--identity bob`)": ["generate", "a photo of bob", "--identity", "bob", "--library",
                                                    "lib"],
    'an imported identity that names no model, without `--model` (`generate "a photo of imp" --identity imp '
    "--library imports`, imp imported from a 32-wide embedding)": ["generate", "a photo of imp", "--identity", "imp",
                                                                   "--library", "imports"],
    'a prompt over 77 tokens (`"a photo of alice with a red balloon and a blue kite …"`)': [
        "generate", LONG_PROMPT, "--identity", "alice", "--library", "lib", "-n", "1", "--steps", "1", "--out", "out"],
    "steps under 1 (`--steps 0`)": [*GENERATE, "--steps", "0"],
    "a size not divisible by 8 (`--height 100`)": [*GENERATE, "--height", "100"],
    "more steps than the model has timesteps (`--steps 5000`)": [*GENERATE, "--steps", "5000"],
    "a size beyond any model (`--width 8192`)": [*GENERATE, "--width", "8192"],
    "negative guidance (`--guidance -1`)": [*GENERATE, "--guidance", "-1"],
    "guidance that is not a number (`--guidance nan`)": [*GENERATE, "--guidance", "nan"],
    "a prompt that is not UTF-8 text (typed in a Latin-1 terminal: `été`)": [
        "generate", "a photo of alice in " + LATIN_1_ETE, "--identity", "alice", "--library", "lib"],
    "an output folder that is a file (`--out notes.jpg`)": [*GENERATE, "--out", "notes.jpg"],
    'a prompt without the identity (`"a photo of bob" --identity alice`)': ["generate", "a photo of bob", "--identity",
                                                                           "alice", "--library", "lib"],
    # Drawing into a picture or a pose
    "a mask without a picture (`--mask mask-half-size.png`)": [*GENERATE, "--mask", "mask-half-size.png"],
    "a strength outside (0, 1] (`--image scene.png --strength 1.5`)": [*GENERATE, "--image", "scene.png",
                                                                      "--strength", "1.5"],
    "a strength that leaves no step (`--image scene.png --strength 0.05 --steps 10`)": [
        *GENERATE, "--image", "scene.png", "--strength", "0.05", "--steps", "10"],
    "a mask of another shape (`--image scene.png --mask mask-square.png`, 64 x 64)": [*INPAINT, "mask-square.png"],
    "a mask of the picture's shape at another size (`--mask mask-half-size.png`, 48 x 32)": [
        *INPAINT, "mask-half-size.png", "-n", "1", "--steps", "1", "--out", "out"],
    "an empty mask (`--mask mask-black.png`, all black)": [*INPAINT, "mask-black.png"],
    "an all-white mask (`--mask mask-white.png`)": [*INPAINT, "mask-white.png"],
    "a mask that is not an image (`--mask notes.jpg`, text)": [*INPAINT, "notes.jpg"],
    "a picture that is not there (`--image missing.png`)": [*GENERATE, "--image", "missing.png"],
    "a control image that cannot be read (`--control notes.jpg --controlnet tiny`)": [
        *GENERATE, "--control", "notes.jpg", "--controlnet", "tiny"],
    "a control image without a ControlNet (`--control scene.png`)": [*GENERATE, "--control", "scene.png"],
    "a ControlNet path that is not there (`--controlnet ./no-such-controlnet`)": [
        *GENERATE, "--control", "scene.png", "--controlnet", "./no-such-controlnet"],
    "a ControlNet of another family (`--controlnet controlnet-sd21` on the tiny SD 1.x model)": [
        *GENERATE, "--control", "scene.png", "--controlnet", "controlnet-sd21", "--model", "tiny"],
    "an inpainting model without a mask (`--model tiny-inpaint`, no `--image`)": [*GENERATE, "--model",
                                                                                  "tiny-inpaint"],
    # People in their places, and face swap
    "a region for someone not drawn (`--region bob=left`, only alice drawn)": [*GENERATE, "--region", "bob=left"],
    "a region that is no place (`--region alice=middle`)": [*GENERATE, "--region", "alice=middle"],
    "a region outside the picture (`--region alice=0,0,1.5,1`)": [*GENERATE, "--region", "alice=0,0,1.5,1"],
    "an empty region (`--region alice=0.6,0,0.4,1`)": [*GENERATE, "--region", "alice=0.6,0,0.4,1"],
    "a region without a name (`--region left`)": [*GENERATE, "--region", "left"],
    "two regions for one identity (`--region alice=left --region alice=right`)": [
        *GENERATE, "--region", "alice=left", "--region", "alice=right"],
    'a heatmap with a region for someone not drawn (`attention "a photo of alice" --identity alice --region '
    'bob=left`)': ["attention", "a photo of alice", "--identity", "alice", "--library", "lib", "--region", "bob=left"],
    "a photo with no face to swap (`swap no-face.png --identity alice`)": _swap("no-face.png"),
    "a face number the photo does not have (`swap me.jpg --identity alice --face 3`)": _swap(
        "me.jpg", "--face", "3"),
    "a face that is neither a number nor all (`swap me.jpg --identity alice --face first`)": _swap(
        "me.jpg", "--face", "first"),
    # Many people
    "a folder with no photos (`learn-batch photos`)": ["learn-batch", "photos", "--model", "tiny"],
    "one name twice in a folder (`learn-batch people`: `alice.jpg` and `Alice.png`)": ["learn-batch", "people"],
    "a CSV without a name column (`--csv no-name.csv`: `photo,person`)": ["learn-batch", ".", "--csv", "no-name.csv"],
    "a CSV row with a field too many (`--csv bad-row.csv`)": ["learn-batch", ".", "--csv", "bad-row.csv"],
    "one name twice in a CSV (`--csv twice.csv`: alice and Alice)": ["learn-batch", ".", "--csv", "twice.csv"],
    # Evaluation
    "a photo folder that is not there (`evaluate no-such-folder`)": ["evaluate", "no-such-folder", "--model", "tiny"],
    "an unknown method variant (`--methods celeb-basis+colour`)": ["evaluate", "photos", "--methods",
                                                                   "celeb-basis+colour"],
    "no images (`--images-per-prompt 0`)": ["evaluate", "photos", "--images-per-prompt", "0"],
    "a names file that is not there (`basis filter --names missing.txt`)": ["basis", "filter", "--model", "tiny",
                                                                            "--names", "missing.txt"],
    # The web app
    "another address without the flag (`ui --host 0.0.0.0`)": ["ui", "--host", "0.0.0.0"],
    "a port that does not exist (`ui --port 70000`)": ["ui", "--port", "70000"],
    "sharing without a password (`ui --share-on-network`)": ["ui", "--share-on-network"],
    "a user name without a password (`ui --auth alice`)": ["ui", "--auth", "alice"],
    "a ControlNet that is not on this machine (`ui --controlnet lllyasviel/sd-controlnet-canny`)": [
        "ui", "--controlnet", "lllyasviel/sd-controlnet-canny"],
    "a ControlNet file that is not there (`ui --controlnet missing.safetensors`)": [
        "ui", "--controlnet", "missing.safetensors"],
    "the random-weight ControlNet with a real model (`ui --model some/model --controlnet tiny`)": [
        "ui", "--model", "some/model", "--controlnet", "tiny"],
}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = bad_files.make_all(tmp_path_factory.mktemp("bad-input"))
    shutil.copy(bad_files.SAMPLE, folder / "me.jpg")
    (folder / "lib" / ".checkpoints").mkdir(parents=True, exist_ok=True)
    (folder / "lib" / ".checkpoints" / "dora.safetensors").write_bytes(b"an interrupted run's checkpoint")
    return folder


def test_every_row_has_a_case_and_every_case_a_row():
    labels = [row.label for row in table_rows()]
    assert len(labels) == len(set(labels)), "two table rows have the same input"
    assert sorted(set(labels) - set(CASES)) == [], "table rows without a case in CASES"
    assert sorted(set(CASES) - set(labels)) == [], "cases whose table row is gone"


def _appears(quoted: str, output: str) -> bool:
    """The quoted line is in the output, `…` standing for any text."""
    pattern = ".*?".join(re.escape(part) for part in quoted.split("…"))
    return re.search(pattern, output) is not None


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row.label[:60])
def test_the_user_sees_what_the_table_says(row: Row, bad_folder, monkeypatch, capsys):
    monkeypatch.chdir(bad_folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # every row as on a machine without a network
    code = main(CASES[row.label])
    out, err = capsys.readouterr()
    shown = out + err
    assert "Traceback" not in shown
    assert code == row.exit_code, shown
    lines = [line for line in err.splitlines() if line.strip()]
    if code:
        assert len(lines) == 1 and lines[0].startswith("error: "), err  # one line, no traceback
    else:
        assert not any(line.startswith("error:") for line in lines), err
    for quoted in row.quoted:
        assert _appears(quoted, shown), f"docs/errors.md says {quoted!r}; the CLI printed {shown!r}"
    if not row.quoted:  # accepted without a word: nothing on stderr but what the command made
        assert not lines, err
    assert not (bad_folder / "PAYLOAD-RAN").exists()  # the pickle's code never ran, whichever row ran


def test_the_pickle_payload_is_real(bad_folder, tmp_path):
    """The proof that `import evil.pt` refuses without running code is only worth something if the payload
    does run when unpickled unsafely: it does (in a copy that writes its marker elsewhere)."""
    import torch

    marker = tmp_path / "ran"
    torch.save({"payload": bad_files.Payload(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)  # what anybody never does
    assert marker.read_text() == "ran"
    assert not (bad_folder / "PAYLOAD-RAN").exists()


def test_the_accepted_photos_are_used_as_promised(bad_folder):
    """The rows accepted without a word: the face is found where the row says, and the aligned face is whole."""
    from anybody.face import load_photo
    from anybody.face.prepare import prepare_face

    upright = prepare_face(bad_folder / "exif-rotated.jpg")
    left, top, _, _ = upright.face.box  # where the face is in the upright photo: turned back
    expected = bad_files.portrait_face_box()
    assert abs(left - expected[0]) < 12 and abs(top - expected[1]) < 12
    at_border = prepare_face(bad_folder / "face-at-border.jpg")
    assert at_border.face.box[0] < 0 < at_border.face.box[2]  # the face box reaches past the left edge
    assert at_border.aligned.size == (512, 512)
    assert load_photo(bad_folder / "alpha.png").getpixel((5, 5)) == (255, 255, 255)  # transparency on white
    assert load_photo(bad_folder / "16bit.png").getpixel((128, 128))[0] > 0


def test_debug_shows_the_traceback(tmp_path):
    """The same error as the table's first row, with `--debug`: Python's traceback for a bug report."""
    debug = subprocess.run([sys.executable, "-m", "anybody", "--debug", "face", "missing.jpg"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "PhotoError: The photo missing.jpg does not exist" in debug.stderr
