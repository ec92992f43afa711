"""`anybody face`: what will be learned from a photo, before anything is learned."""

from __future__ import annotations

import argparse
from pathlib import Path

from anybody.learning.config import LearnConfig

OUT = "anybody-output/face"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    face = commands.add_parser("face", help="show what will be learned from a photo")
    face.add_argument("photo", help="the photo to look at")
    face.add_argument("--out", default=OUT, help=f"folder for the annotated photo and the aligned crop (default {OUT})")
    face.add_argument("--face", type=int, dest="face_index",
                      help="which face when the photo has several: 0 is the largest (default: 0)")
    face.add_argument("--detector", choices=("hog", "cnn"), default=LearnConfig.detector,
                      help=f"dlib's face detector (default {LearnConfig.detector})")
    face.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from anybody.face import write_face_preview

    for path in write_face_preview(args.photo, Path(args.out), face_index=args.face_index, detector=args.detector):
        print(path)
    return 0
