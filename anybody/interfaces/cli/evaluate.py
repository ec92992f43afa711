"""`anybody evaluate`: every method on the same photos, prompts and seeds, scored, with a report; or, with
`--task recovery`, the synthetic recovery task (a planted identity learned back) for every method."""

from __future__ import annotations

import argparse

from anybody.evaluation.prompts import SUITE, load_prompts
from anybody.evaluation.settings import CLIP_THRESHOLD, DEFAULT_OUT, EvaluationSettings, RecoverySettings
from anybody.evaluation.variants import DEFAULT_METHODS, VARIANTS, parse_methods
from anybody.generation import defaults
from anybody.interfaces.cli.learn import OPTIONS, default_text
from anybody.interfaces.cli.options import add_device, add_model
from anybody.methods import METHODS

SHARED_LEARN_OPTIONS = ("steps", "views", "resolution", "face_encoder")  # the same for every method compared


def add_parsers(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score every method on the same photos and prompts, with a report",
        description="Learn each person (one photo per person in PHOTOS, named by the file name) with every method, "
        "draw the same prompts with the same seeds, score every image (ID similarity, face detection, CLIP-T, "
        "ID(Prompt), face diversity) and write report.json, report.md and report.html into --out. A rerun reuses "
        "what is done. --task recovery instead learns back an identity planted in the model, for every method.")
    evaluate.add_argument("photos", metavar="PHOTOS", help="a folder with one photo per person (alice.jpg, bob.png)")
    add_model(evaluate, single_file=False)
    add_device(evaluate)
    evaluate.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                          help=f"comma-separated: {', '.join(METHODS)}, each optionally with "
                          f"{', '.join('+' + v for v in VARIANTS)} (default {','.join(DEFAULT_METHODS)})")
    evaluate.add_argument("--task", choices=("photos", "recovery"), default="photos",
                          help="photos: the full evaluation; recovery: learn back a planted identity (default photos)")
    evaluate.add_argument("--prompts", default=SUITE, help=f"'{SUITE}' (the shipped 55 prompts) or a file, one "
                          "prompt a line with {} where the name goes (default suite)")
    evaluate.add_argument("--images-per-prompt", type=int, default=defaults.NUM_IMAGES,
                          help=f"images drawn per prompt and person (default {defaults.NUM_IMAGES})")
    evaluate.add_argument("--seed", type=int, default=EvaluationSettings.seed,
                          help="learning seed; image i of every prompt is drawn with seed + i "
                          f"(default {EvaluationSettings.seed})")
    recovery = {"steps": RecoverySettings.steps, "views": RecoverySettings.views}
    for option in (option for option in OPTIONS if option.field in SHARED_LEARN_OPTIONS):
        number = int if option.field in recovery or option.field == "resolution" else None
        also = f"; recovery: {recovery[option.field]}" if option.field in recovery else ""
        evaluate.add_argument(option.flag, dest=option.field, type=number,
                              help=f"learning, every method alike: {option.help}{default_text(option.field)}{also}")
    evaluate.add_argument("--lr", type=float, help="recovery only: one learning rate for every method "
                          "(default: each method's own)")
    evaluate.add_argument("--drawing-steps", type=int, default=defaults.STEPS,
                          help=f"denoising steps per image (default {defaults.STEPS}, DDIM)")
    evaluate.add_argument("--guidance", type=float, default=defaults.GUIDANCE,
                          help=f"classifier-free guidance (default {defaults.GUIDANCE})")
    evaluate.add_argument("--scorer", default=EvaluationSettings.scorer,
                          help="the recognizer that scores identity: dlib, or the path to an ArcFace .onnx file; "
                          f"best not the one the methods learned with (default {EvaluationSettings.scorer})")
    evaluate.add_argument("--clip", help="a CLIP model for CLIP-T: a Hub id (openai/clip-vit-large-patch14) or a "
                          "local folder (default: none, and the CLIP-T column stays empty)")
    evaluate.add_argument("--clip-threshold", type=float, default=CLIP_THRESHOLD,
                          help="ID(Prompt) counts an image's ID only where CLIP-T reaches this "
                          f"(default {CLIP_THRESHOLD})")
    evaluate.add_argument("--out", help=f"the report folder (default {DEFAULT_OUT}; recovery: "
                          f"{RecoverySettings.out})")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from anybody import settings
    from anybody.evaluation.people import find_people
    from anybody.models.catalog import locate_model

    model = args.model or settings.default_model()
    methods = parse_methods(args.methods)
    if args.task == "recovery":
        recovery = RecoverySettings(
            photos=args.photos, model=model, methods=methods,
            steps=RecoverySettings.steps if args.steps is None else args.steps,  # --steps 0 is refused, not ignored
            views=RecoverySettings.views if args.views is None else args.views, learning_rate=args.lr, seed=args.seed,
            out=args.out or RecoverySettings.out, device=args.device, dtype=args.dtype)
        recovery.check()
        find_people(recovery.photos)  # before torch is imported: a wrong folder is refused at once
        locate_model(model)  # a model that cannot be had is refused before any learning
        from anybody.evaluation.recovery import recover

        recover(recovery)
        print(Path(recovery.out, "recovery.md").read_text(encoding="utf-8"), end="")
        print(f"Written: {Path(recovery.out, 'recovery.md')} and recovery.json")
        return 0
    evaluation = EvaluationSettings(
        photos=args.photos, model=model, methods=methods, prompts=args.prompts,
        images_per_prompt=args.images_per_prompt, seed=args.seed, steps=args.steps, views=args.views,
        resolution=args.resolution, drawing_steps=args.drawing_steps, guidance=args.guidance, scorer=args.scorer,
        clip=args.clip, clip_threshold=args.clip_threshold, out=args.out or DEFAULT_OUT, device=args.device,
        dtype=args.dtype, **({"face_encoder": args.face_encoder} if args.face_encoder else {}))
    evaluation.check()
    find_people(evaluation.photos)  # before torch is imported: a wrong folder or prompt file is refused at once
    load_prompts(evaluation.prompts)
    locate_model(model)  # a model that cannot be had is refused before any learning
    from anybody.evaluation.harness import evaluate

    result = evaluate(evaluation)
    print(f"{result.new_images} image{'s' if result.new_images != 1 else ''} drawn, {len(result.rows)} scored.")
    print(Path(evaluation.out, "report.md").read_text(encoding="utf-8"), end="")
    print(f"Report: {Path(evaluation.out, 'report.html')} (and report.md, report.json)")
    return 0
