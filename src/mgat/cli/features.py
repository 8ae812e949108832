"""``mgat features text|image|audio``: item features from raw content."""

from __future__ import annotations

import argparse

import numpy as np
from tqdm.auto import tqdm

from mgat.features.common import sidecar_path


def register(subparsers) -> None:
    features = subparsers.add_parser(
        "features",
        help="extract item features from text, images or audio",
        description=(
            "Write one (items, width) float32 .npy row per row of an items table, "
            "plus <out>.json describing how it was made. Use the result with "
            "`mgat data import --feature NAME=PATH.npy`."
        ),
    )
    commands = features.add_subparsers(dest="features_command", required=True)

    text = _add_command(commands, "text", "sentence embeddings of a text column")
    text.add_argument(
        "--model",
        help="a local sentence-transformers model directory "
        "(default: the bundled all-MiniLM-L6-v2)",
    )
    text.add_argument("--batch-size", type=int, default=64, help="texts per batch")
    text.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    text.set_defaults(func=run_text)

    image = _add_command(commands, "image", "features of an image-path column")
    image.add_argument(
        "--weights",
        help="a TorchScript image network; default: the weight-free colour and "
        "texture descriptor",
    )
    image.add_argument("--batch-size", type=int, default=32, help="with --weights")
    image.add_argument("--device", default="cpu", help="with --weights")
    _add_impute(image)
    image.set_defaults(func=run_image)

    audio = _add_command(commands, "audio", "MFCC and spectral statistics of audio")
    audio.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="decode at most this many seconds per file (0: all)",
    )
    _add_impute(audio)
    audio.set_defaults(func=run_audio)


def _add_command(commands, name: str, summary: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary)
    parser.add_argument(
        "--items", required=True, help="items table: CSV, or TSV by suffix"
    )
    parser.add_argument("--column", required=True, help="the column to read")
    parser.add_argument("--out", required=True, help="the .npy file to write")
    return parser


def _add_impute(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impute-mean",
        action="store_true",
        help="give unreadable files the mean vector instead of failing",
    )


def run_text(args: argparse.Namespace) -> int:
    from mgat.features.text import extract_text

    out = extract_text(
        args.items,
        args.column,
        args.out,
        model=args.model,
        batch_size=args.batch_size,
        device=args.device,
        progress=_progress,
    )
    return _report(out)


def run_image(args: argparse.Namespace) -> int:
    from mgat.features.image import extract_image

    out = extract_image(
        args.items,
        args.column,
        args.out,
        weights=args.weights,
        impute_mean=args.impute_mean,
        batch_size=args.batch_size,
        device=args.device,
        progress=_progress,
    )
    return _report(out)


def run_audio(args: argparse.Namespace) -> int:
    from mgat.features.audio import extract_audio

    out = extract_audio(
        args.items,
        args.column,
        args.out,
        impute_mean=args.impute_mean,
        max_seconds=args.max_seconds or None,
        progress=_progress,
    )
    return _report(out)


def _progress(iterable, **options):
    return tqdm(iterable, leave=False, **options)


def _report(out) -> int:
    shape = np.load(out, mmap_mode="r").shape
    print(f"wrote {shape[0]:,} x {shape[1]} features to {out}")
    print(f"described in {sidecar_path(out)}")
    return 0
