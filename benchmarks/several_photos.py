"""One photo against three of the same face: how close learning gets to a planted identity, same total steps.

The recovery task of the core tests (tests/learning/test_recovery.py, `anybody.evaluation.recovery`): a
known identity is planted in the model's celeb basis, and the frozen model's own prediction with the
planted tokens is the target of every step, on the real photos' views and prompts. Celeb Basis learns it
back (a) from the sample photo, (b) from the sample and two edits of it learned as one person
(`same_person`: mirrored; warmer, less saturated and cropped), each photo with its own views, and (c) from
the sample alone with as many views as (b) has in all, which separates "more photos" from "more views".
Every run has the same steps, batch and learning rate, over several seeds.

Reported per setting, as means (and the range) over seeds: the cosine of the learned tokens to the planted
ones and their distance to them relative to the start's (`closeness`); the loss of the last 10 steps; and
the same closeness for a held-out photo of the face, not learned from (a brighter, mirrored crop), as the
trained MLP maps it: how well the likeness carries to a new picture of the person.

    python benchmarks/several_photos.py                       # tiny, 200 steps, 8 views a photo, 5 seeds
    python benchmarks/several_photos.py --steps 400 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTO = ROOT / "anybody" / "data" / "sample_face.jpg"
NAME = "eileen"


def edits(folder: Path) -> dict[str, Path]:
    """The sample, two edits learned with it, and a held-out edit: one face in four pictures."""
    sample = Image.open(PHOTO).convert("RGB")
    width, height = sample.size
    warmer = ImageEnhance.Color(sample).enhance(0.6)
    warmer = Image.merge("RGB", [band.point(lambda value, gain=gain: min(255, round(value * gain)))
                                 for band, gain in zip(warmer.split(), (1.1, 1.0, 0.85))])
    pictures = {"sample": sample, "mirrored": ImageOps.mirror(sample),
                "warmer-crop": warmer.crop((width // 8, 0, width - width // 16, height - height // 8)),
                "held-out": ImageOps.mirror(ImageEnhance.Brightness(sample).enhance(1.25)).crop(
                    (width // 16, height // 16, width - width // 8, height))}
    paths = {}
    for name, picture in pictures.items():
        paths[name] = folder / f"{name}.png"
        picture.save(paths[name])
    return paths


def recover(pipe, photos: list[Path], held_out: Path, views: int, steps: int, learning_rate: float, seed: int,
            library: Path) -> dict[str, float]:
    """Learn the planted identity from `photos` (one person) and measure how close it and the held-out get."""
    from anybody.evaluation.recovery import closeness, planted_tokens
    from anybody.face import get_face_encoder, prepare_face
    from anybody.identity import Identity
    from anybody.learning import LearnConfig
    from anybody.learning.targets import teacher_target
    from anybody.learning.train import fit, prepare, save_identities
    from anybody.learning.views import build_view_bank

    config = LearnConfig(steps=steps, views=views, learning_rate=learning_rate, seed=seed, checkpoint_every=steps)
    planted = planted_tokens(pipe, 0)
    run = prepare([photos], [NAME], pipe, config, library=library, progress=False)
    losses: list[float] = []
    try:
        start = Identity(NAME, {})
        run.learner.write_identity(start, 0, run.banks[0].features)
        fit(run, target=teacher_target(run, {NAME: Identity(NAME, planted)}),
            callback=lambda step, loss: losses.append(loss), progress=False)
        learned = save_identities(run)[0]
        encoder = get_face_encoder(config.face_encoder)
        resolution = pipe.unet.config.sample_size * pipe.vae_scale_factor  # as `prepare` (the views' latents)
        held_bank = build_view_bank(prepare_face(held_out, encoder=encoder), encoder, pipe.vae, resolution, views,
                                    seed=seed + 100)
        held = Identity(NAME, {})
        run.learner.write_identity(held, 0, held_bank.features)
    finally:
        run.text.remove()
        run.checkpoint.unlink(missing_ok=True)
    before, after, new_photo = closeness(start, planted), closeness(learned, planted), closeness(held, planted)
    return {"cosine": after["cosine"], "relative_distance": after["distance"] / before["distance"],
            "loss_last": sum(losses[-10:]) / len(losses[-10:]), "held_cosine": new_photo["cosine"],
            "held_relative_distance": new_photo["distance"] / before["distance"]}


def spread(values: list[float], digits: int = 3) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})" if len(values) > 1 else \
        f"{mean:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--views", type=int, default=8, help="augmented views per photo")
    parser.add_argument("--lr", type=float, default=0.1, help="the recovery test's learning rate")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()

    from anybody.learning import LearnConfig
    from anybody.models import load_pipeline

    seeds = [int(seed) for seed in args.seeds.split(",")]
    pipe = load_pipeline(args.model, device="cpu")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        paths = edits(folder)
        three = [paths["sample"], paths["mirrored"], paths["warmer-crop"]]
        settings = [("one photo", [paths["sample"]], args.views),
                    ("three photos, one person", three, args.views),
                    (f"one photo, {3 * args.views} views", [paths["sample"]], 3 * args.views)]
        rows = []
        for label, photos, views in settings:
            results = [recover(pipe, photos, paths["held-out"], views, args.steps, args.lr, seed, folder / "lib")
                       for seed in seeds]
            rows.append((label, len(photos) * views, results))
            print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"Recovery of a planted identity on `{args.model}`, Celeb Basis: {args.steps} steps, batch "
          f"{LearnConfig().batch_size}, lr {args.lr:g}, {args.views} views a photo; mean (min–max) over seeds "
          f"{args.seeds}.\n")
    print("| learned from | views in all | cosine to planted | distance to planted, end / start | "
          "loss, last 10 steps | held-out photo: cosine | held-out photo: distance end / start |")
    print("|---|---|---|---|---|---|---|")
    for label, views, results in rows:
        column = {key: [result[key] for result in results] for key in results[0]}
        print(f"| {label} | {views} | {spread(column['cosine'])} | {spread(column['relative_distance'])} | "
              f"{statistics.fmean(column['loss_last']):.2e} | {spread(column['held_cosine'])} | "
              f"{spread(column['held_relative_distance'])} |")
    print("\nPer seed: cosine to planted / distance end / start.\n")
    print(f"| learned from | {' | '.join(f'seed {seed}' for seed in seeds)} |")
    print(f"|---|{'---|' * len(seeds)}")
    for label, _, results in rows:
        cells = " | ".join(f"{result['cosine']:.3f} / {result['relative_distance']:.3f}" for result in results)
        print(f"| {label} | {cells} |")


if __name__ == "__main__":
    main()
