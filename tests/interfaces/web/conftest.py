"""The web app under test: one app on the tiny model for this folder's tests (importing Gradio costs 10-15 s),
served on a free loopback port with its own library, and Debian's Chromium driven by Playwright.

Screenshots of every step go to `anybody-output/web-screenshots/` (or `ANYBODY_SCREENSHOTS`): the test
artifacts CI keeps. docs/web.md shows three of them, copied to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.robustness import bad_files

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = Path(os.environ.get("ANYBODY_SCREENSHOTS") or ROOT / "anybody-output" / "web-screenshots")
CHROMIUM = ("/usr/lib/chromium/chromium",)  # Debian's binary; /usr/bin/chromium is a wrapper script
UPLOAD_LIMIT_MB = 1  # small, so that a test can go over it with a small file


def chromium() -> str | None:
    """Debian's Chromium, or ANYBODY_CHROMIUM; None when there is none (then the browser tests skip)."""
    candidates = [os.environ.get("ANYBODY_CHROMIUM", ""), *CHROMIUM, shutil.which("chromium") or ""]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """pytest-playwright's launch arguments, with Debian's Chromium (Playwright's own needs a download) and a
    webcam that films the sample photo (Chromium's fake capture device, allowed without asking)."""
    path = chromium()
    if path is None:
        pytest.skip("Chromium is not installed and `make test` could not install it (apt-get install chromium "
                    "needs root or sudo); the web app's browser tests need it")
    video = webcam_video(bad_files.SAMPLE, tmp_path_factory.mktemp("webcam") / "sample.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]
    return {**browser_type_launch_args, "executable_path": path,
            "args": [*browser_type_launch_args.get("args", []), *camera]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """Every page on a laptop's screen (1366 x 900), where the screenshots are taken."""
    return {**browser_context_args, "viewport": {"width": 1366, "height": 900}}


def webcam_video(photo: Path, path: Path, frames: int = 2) -> Path:
    """The photo as a still video in Y4M (the YUV 4:2:0 format Chromium's fake webcam plays)."""
    from PIL import Image

    with Image.open(photo) as image:
        ycbcr = image.convert("RGB").resize((512, 512)).convert("YCbCr")
    luma, blue, red = ycbcr.split()
    frame = b"FRAME\n" + luma.tobytes() + b"".join(plane.resize((256, 256)).tobytes() for plane in (blue, red))
    path.write_bytes(b"YUV4MPEG2 W512 H512 F25:1 Ip A1:1 C420jpeg\n" + frame * frames)
    return path


@pytest.fixture(scope="package")
def web_work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app's temporary folder (uploads, exports), with Gradio set offline before it is imported."""
    from anybody.interfaces.web.server import OFFLINE_ENVIRONMENT, go_offline

    work = tmp_path_factory.mktemp("web-work")
    saved = {key: os.environ.get(key) for key in [*OFFLINE_ENVIRONMENT, "GRADIO_TEMP_DIR"]}
    go_offline(work)
    yield work
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="package")
def studio(web_work: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app's studio: the tiny model (its own pipeline, loaded on first use: the app installs tokens in it)
    and its own library."""
    from anybody.interfaces.web.studio import Studio

    root = tmp_path_factory.mktemp("web")
    return Studio("tiny", work=web_work, out=root / "out", library=root / "library", device="cpu",
                  max_upload_mb=UPLOAD_LIMIT_MB)


@pytest.fixture(scope="package")
def app_url(studio) -> Iterator[str]:
    """The app, served on a free loopback port for the whole folder."""
    from anybody.interfaces.web.server import LOOPBACK, running_app

    port = free_port()
    with running_app(studio, LOOPBACK, port):
        yield f"http://{LOOPBACK}:{port}/"


@pytest.fixture(scope="module")
def zoe(studio) -> Iterator[str]:
    """An identity of the app's library with a reference face (so that a swap is scored), for one module."""
    import torch

    from anybody.identity import Identity

    generator = torch.Generator().manual_seed(11)
    path = Identity("zoe", {"text_encoder": torch.randn(2, 32, generator=generator)},
                    metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"},
                    face_descriptor=torch.rand(128, generator=generator)).save(library=studio.library)
    yield "zoe"
    path.unlink(missing_ok=True)


@pytest.fixture(scope="package")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bad-input table's photos (no-face.png, notes.jpg, two-faces.jpg, ...) and the sample."""
    folder = tmp_path_factory.mktemp("web-photos")
    bad_files.make_photos(folder)
    shutil.copy(bad_files.SAMPLE, folder / "sample_face.jpg")
    return folder


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable:
    """shot(page, "what") saves a full-page screenshot, numbered in the order of the test's steps."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"\W+", "-", request.node.name).strip("-")
    count = iter(range(1, 100))

    def take(page, what: str) -> Path:
        path = SCREENSHOTS / f"{test}-{next(count):02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def library_files(studio) -> list[str]:
    """Every file of the library folder, hidden ones included: what "the library is left as it was" compares."""
    from anybody import settings

    folder = settings.library_folder(studio.library)
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []
