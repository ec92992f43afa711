"""Start-up time of each command: how long `anybody ...` takes when it has little or nothing to do.

Each command runs in its own process, started as the `anybody` script starts it; the best of --repeat
runs is kept, since the machine's load only ever adds time. One more run under `python -X importtime`
lists which of the heavy libraries (torch, diffusers, transformers, dlib) it imported. The commands are
the ones a user waits on before anything happens: `--help`, refused arguments, the library commands on a
small library, and `face` (which does its real work, dlib's detection, but must load no diffusion model).
Every command runs offline (HF_HUB_OFFLINE=1), as on a machine without a network: a model that is not here
is refused then, and `models download` refuses rather than fetching gigabytes.

    python benchmarks/startup.py                       # this checkout
    python benchmarks/startup.py --root /tmp/before    # another checkout of anybody, same interpreter

Target: under 1 s for `--help`, refusals and the library commands (`identities`, `export`, `import`); under
0.5 s on an idle machine for the refusals read from the identity files and the paths ("refused: ..."), which
import no model library at all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEAVY = ("torch", "diffusers", "transformers", "dlib")
ENTRY = "import sys; from anybody.interfaces.cli import main; sys.exit(main(sys.argv[1:]))"  # the `anybody` script
TARGET_S = 1.0
INSTANT_S = 0.5  # the "refused: ..." rows


def commands(work: Path) -> dict[str, list[str]]:
    """What to time, by label: argv after `anybody`, run in `work` (which holds the library and files)."""
    library = str(work / "library")
    return {
        "--help": ["--help"],
        "generate -n 0 (refused)": ["generate", "a photo of alice", "-n", "0"],
        "learn --steps 0 (refused)": ["learn", "photo.jpg", "--name", "bob", "--steps", "0"],
        "identities (empty library)": ["identities", "--library", str(work / "empty")],
        "identities (one identity)": ["identities", "--library", str(work / "library")],
        "identities show": ["identities", "show", "alice", "--library", str(work / "library")],
        "export --format a1111": ["export", "alice", "--format", "a1111", "--out", str(work / "alice.pt"),
                                  "--library", str(work / "library")],
        "import (no --model)": ["import", str(work / "bob.safetensors"), "--name", "bob", "--replace",
                                "--library", str(work / "library")],
        "refused: generate, an identity the library lacks": ["generate", "a photo of zed", "--identity", "zed",
                                                             "--library", library],
        "refused: generate, the prompt without the identity's word": ["generate", "a photo of bob", "--identity",
                                                                      "alice", "--library", library],
        "refused: generate, an import naming no model, no --model": ["generate", "a photo of imp", "--identity",
                                                                     "imp", "--library", library],
        "refused: attention, an identity the library lacks": ["attention", "a photo of zed", "--identity", "zed",
                                                              "--library", library],
        "refused: export zed": ["export", "zed", "--format", "a1111", "--library", library],
        "refused: export over an existing file": ["export", "alice", "--format", "a1111", "--out",
                                                  str(work / "taken.pt"), "--library", library],
        "refused: mix alice zed": ["mix", "alice", "zed", "--name", "x", "--library", library],
        "refused: identities remove zed": ["identities", "remove", "zed", "--yes", "--library", library],
        "refused: import a file that is not there": ["import", str(work / "missing.pt"), "--name", "x",
                                                     "--library", library],
        "refused: learn a photo that is not there": ["learn", str(work / "missing.jpg"), "--name", "x",
                                                     "--library", library],
        "refused: evaluate a folder that is not there": ["evaluate", str(work / "missing")],
        "face (with detection)": ["face", "photo.jpg", "--out", str(work / "face")],
        "learn --model nosuch/model (refused: not here)": ["learn", "photo.jpg", "--name", "bob", "--model",
                                                          "nosuch/model"],
        "generate --model tinyy (refused: did you mean tiny?)": [
            "generate", "a photo of alice", "--identity", "alice", "--library", str(work / "library"), "--model",
            "tinyy"],
        "basis --model nosuch/model (refused: not here)": ["basis", "--model", "nosuch/model"],
        "models": ["models"],
        "models download (refused offline)": ["models", "download", "CompVis/stable-diffusion-v1-4"],
    }


def prepare(work: Path) -> None:
    """A library with a learned and an imported identity, a diffusers-style embedding to import, a file an
    export must not replace, and the sample photo."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from anybody.identity import Identity

    torch.manual_seed(0)
    (work / "empty").mkdir()
    Identity(name="alice", encoder_embeddings={"text_encoder": torch.randn(2, 32)},
             metadata={"method": "celeb-basis", "base_model": "tiny", "family": "sd1"}).save(library=work / "library")
    save_file({"<bob>": torch.randn(2, 32)}, str(work / "bob.safetensors"))
    Identity(name="imp", encoder_embeddings={"text_encoder": torch.randn(2, 32)},  # imported: no model named
             metadata={"method": "imported"}).save(library=work / "library")
    (work / "taken.pt").write_bytes(b"kept")
    shutil.copy(ROOT / "anybody" / "data" / "sample_face.jpg", work / "photo.jpg")


def run(root: Path, work: Path, argv: list[str], importtime: bool = False) -> tuple[float, int, str]:
    """(wall seconds, exit code, stderr) of one `anybody argv` with `root` first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(root), "ANYBODY_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", ENTRY, *argv]
    (work / "alice.pt").unlink(missing_ok=True)  # what `export` writes: an existing file is refused now
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=environment, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done.returncode, done.stderr


def heavy_imports(importtime_log: str) -> list[str]:
    """The heavy libraries a process imported, read from `-X importtime` lines ("... | cumulative | name")."""
    names = {line.rsplit("|", 1)[-1].strip() for line in importtime_log.splitlines() if line.startswith("import time")}
    return [library for library in HEAVY if library in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the anybody checkout to time (default: this one)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the fastest is kept (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="anybody-startup-") as folder:
        work = Path(folder)
        prepare(work)
        print(f"{args.root.resolve()}: best of {args.repeat}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        print("| command | exit | seconds | heavy libraries imported |\n|---|---|---|---|")
        for label, argv in commands(work).items():
            times, code = [], 0
            for _ in range(args.repeat):
                seconds, code, _ = run(args.root, work, argv)
                times.append(seconds)
            _, _, log = run(args.root, work, argv, importtime=True)
            best = min(times)
            target = INSTANT_S if label.startswith("refused: ") else TARGET_S
            mark = "" if best < target or label.startswith("face") else f" (over {target:g} s)"
            print(f"| `{label}` | {code} | {best:.2f}{mark} | {', '.join(heavy_imports(log)) or 'none'} |", flush=True)


if __name__ == "__main__":
    main()
