"""``mgat data build NAME``: build a dataset from data inside an installed package.

Registered under ``mgat data`` by ``mgat.cli.data``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from mgat.data import Dataset
from mgat.errors import DataError

BUILDERS = ("movielens-100k",)


def register_build(commands) -> None:
    parser = commands.add_parser(
        "build",
        help="build a ready-made dataset (movielens-100k) with item modalities",
        description=(
            "Build a dataset from data that ships inside an installed package "
            "and save it in the mgat directory format. movielens-100k reads the "
            "recbole wheel (pip install 'mgat[movielens]'); its licence forbids "
            "redistribution, so keep the output to yourself."
        ),
    )
    parser.add_argument("name", choices=BUILDERS)
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument(
        "--kg-links",
        metavar="FILE",
        help="CSV with item_id (ML-100K) and movielens_id or entity_id columns; "
        "adds the knowledge-graph modality",
    )
    parser.add_argument(
        "--text-model",
        metavar="DIR",
        help="sentence-transformers model directory (default: bundled MiniLM)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="texts per batch")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it is a dataset"
    )
    parser.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from mgat.data.movielens import build_movielens_100k, write_movielens_100k

    out = Path(args.out)
    _check_target(out, args.overwrite)
    dataset = build_movielens_100k(
        seed=args.seed,
        kg_links=args.kg_links,
        text_model=args.text_model,
        batch_size=args.batch_size,
        progress=lambda it, **kw: tqdm(it, leave=False, **kw),
    )
    _write_staged(out, lambda staging: write_movielens_100k(dataset, staging))
    print(dataset.summary())
    print(f"saved to {out}")
    return 0


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise DataError(
            f"{out} already exists; choose another --out, or pass --overwrite to "
            "replace a dataset directory."
        )
    if not (out / "dataset.json").is_file():
        raise DataError(
            f"{out} exists and is not a dataset directory, so --overwrite will not "
            "replace it. Choose another --out."
        )


def _write_staged(out: Path, write) -> None:
    """Write into a sibling temporary directory, check it reads back, then swap.

    ``out`` ends up either untouched or a complete dataset.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(staging)
        Dataset.load(staging)
        staging.chmod(0o755)  # mkdtemp makes it private
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
