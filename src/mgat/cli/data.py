"""``mgat data ...``: inspect and import datasets."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from pathlib import Path

from mgat.cli.build import register_build
from mgat.data import Dataset
from mgat.data.importers import IMPORT_FORMATS, import_dataset, import_options
from mgat.data.splits import SPLIT_METHODS
from mgat.errors import ConfigError, DataError

# Importer option name -> the command-line flag that sets it.
IMPORT_FLAGS = {
    "name": "--name",
    "user_col": "--user-col",
    "item_col": "--item-col",
    "timestamp_col": "--timestamp-col",
    "rating_col": "--rating-col",
    "split_col": "--split-col",
    "sep": "--sep",
    "features": "--feature",
    "items_file": "--items-file",
    "split_method": "--split",
    "ratios": "--ratios",
    "seed": "--seed",
    "kcore": "--kcore",
    "min_rating": "--min-rating",
    "num_users": "--num-users",
    "allow_pickle": "--no-pickle",
}


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="inspect and import datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    info = commands.add_parser("info", help="print a dataset's statistics")
    info.add_argument("dataset", help="a dataset directory or a built-in name")
    info.set_defaults(func=run_info)

    _register_import(commands)
    register_build(commands)


def run_info(args: argparse.Namespace) -> int:
    print(Dataset.load(args.dataset).summary())
    return 0


def run_import(args: argparse.Namespace) -> int:
    options = _import_options(args)
    dataset = import_dataset(args.format, args.src, **options)
    out = _save_atomically(dataset, Path(args.out), args.overwrite)
    print(dataset.summary())
    print(f"saved to {out}")
    return 0


# ------------------------------------------------------------------- import
def _register_import(commands) -> None:
    parser = commands.add_parser(
        "import",
        help="convert MMRec, research-code or CSV data into a dataset directory",
        description=(
            "Import a dataset and save it in the mgat directory format "
            "(docs/data-format.md). Options that a format does not take are "
            "rejected."
        ),
    )
    parser.add_argument("src", help="source directory (mmrec, research) or file (csv)")
    parser.add_argument("--format", required=True, choices=IMPORT_FORMATS)
    parser.add_argument("--out", required=True, help="dataset directory to create")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out when it already holds a dataset",
    )
    parser.add_argument("--name", help="dataset name (mmrec: picks <name>.inter)")
    parser.set_defaults(func=run_import)

    columns = parser.add_argument_group("columns (csv, mmrec)")
    columns.add_argument("--user-col", dest="user_col")
    columns.add_argument("--item-col", dest="item_col")
    columns.add_argument("--split-col", dest="split_col")
    columns.add_argument("--timestamp-col", dest="timestamp_col", help="csv only")
    columns.add_argument("--rating-col", dest="rating_col", help="csv only")

    csv = parser.add_argument_group("csv")
    csv.add_argument("--sep", type=_separator, help="field separator; 'tab' or \\t")
    csv.add_argument(
        "--feature",
        dest="features",
        action="append",
        type=_feature_spec,
        metavar="NAME=PATH",
        help="a modality's (items, width) .npy array; repeatable",
    )
    csv.add_argument("--items-file", dest="items_file", help="item id of each row")
    csv.add_argument("--split", dest="split_method", choices=SPLIT_METHODS)
    csv.add_argument("--ratios", type=_ratios, help="train,valid,test e.g. 0.8,0.1,0.1")
    csv.add_argument("--seed", type=int, help="seed of the random split")
    csv.add_argument("--kcore", type=int, metavar="K", help="k-core filter")
    csv.add_argument("--min-rating", dest="min_rating", type=float)

    research = parser.add_argument_group("research")
    research.add_argument("--num-users", dest="num_users", type=int)
    research.add_argument(
        "--no-pickle",
        dest="allow_pickle",
        action="store_const",
        const=False,
        help="refuse to unpickle legacy object-array files (they can run code)",
    )


def _import_options(args: argparse.Namespace) -> dict:
    """The importer options set on the command line; rejects foreign ones."""
    options = {
        option: getattr(args, option)
        for option in IMPORT_FLAGS
        if getattr(args, option, None) is not None
    }
    if "features" in options:
        options["features"] = _feature_map(options["features"])

    valid = import_options(args.format)
    foreign = [IMPORT_FLAGS[o] for o in options if o not in valid]
    if foreign:
        allowed = ", ".join(IMPORT_FLAGS[o] for o in valid if o in IMPORT_FLAGS)
        raise ConfigError(
            f"{', '.join(foreign)} does not apply to --format {args.format}; "
            f"that format takes {allowed}."
        )
    return options


def _save_atomically(dataset: Dataset, out: Path, overwrite: bool) -> Path:
    """Write into a temporary directory beside ``out``, check it, then rename.

    A failure at any step removes the temporary directory and the parent
    directories created for it, so ``out`` is either absent, untouched, or a
    complete dataset.
    """
    _check_target(out, overwrite)
    created = [p for p in out.absolute().parents if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        dataset.save(staging)
        Dataset.load(staging)  # what was written must read back
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in created:  # innermost first
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    return out


def _check_target(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise DataError(
            f"{out} already exists; choose another --out, or pass --overwrite to "
            "replace a dataset directory."
        )
    is_dataset = out.is_dir() and (out / "dataset.json").exists()
    if not is_dataset and not (out.is_dir() and not any(out.iterdir())):
        raise DataError(
            f"{out} exists and is not a dataset directory, so --overwrite will not "
            "replace it. Choose another --out."
        )


def _replace(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    # Move the old directory aside first so a failed rename can put it back.
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    backup.rmdir()
    out.rename(backup)
    try:
        staging.rename(out)
    except BaseException:
        backup.rename(out)
        raise
    shutil.rmtree(backup, ignore_errors=True)


# --------------------------------------------------------------- arg parsing
def _separator(text: str) -> str:
    return {"tab": "\t", "\\t": "\t", "comma": ",", "space": " "}.get(text, text)


def _feature_spec(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=PATH, e.g. visual=image_feat.npy; got {text!r}"
        )
    return name.strip(), path.strip()


def _feature_map(specs: list[tuple[str, str]]) -> dict[str, str]:
    features: dict[str, str] = {}
    for name, path in specs:
        if name in features:
            raise ConfigError(
                f"--feature {name} is given twice ({features[name]} and {path}); "
                "give each modality once."
            )
        features[name] = path
    return features


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"expected three fractions train,valid,test e.g. 0.8,0.1,0.1; got {text!r}"
        ) from err
