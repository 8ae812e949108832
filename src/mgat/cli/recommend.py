"""``mgat recommend``: top-K lists in original ids, as a table, CSV, JSON or Parquet.

Users are scored a chunk at a time and every chunk is written before the next is
scored, so ``--all-users`` never holds every list (or the score matrix) in
memory. Output to ``--out`` goes to a temporary file renamed into place at the
end: an interrupted run leaves no half-written file behind.

CSV and Parquet have one row per recommendation with the columns
``user,rank,item,score``; ``--explain`` adds ``share_<part>`` (each modality's
share of the score) and ``evidence_<part>`` (the user's most attended past
items as ``item:weight`` joined by ``|``). JSON is an array with one object per
user.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgat.errors import ConfigError
from mgat.explain import Explanation
from mgat.recommend import (
    NO_ITEM,
    RecommendationBatch,
    Scorer,
    explain,
    load_new_items,
    load_saved,
)

FORMATS = ("table", "csv", "json", "parquet")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="top-K items for users of a trained model",
        description="Recommend the top K items (original ids) for some or all "
        "users of a run; each user's training items are left out.",
    )
    parser.add_argument(
        "--run", required=True, help="a run directory (or a saved model directory)"
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", nargs="+", metavar="ID", help="original user ids")
    who.add_argument("--all-users", action="store_true", help="every user")
    parser.add_argument("--k", type=int, default=20, help="items per user")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add each modality's share of the score and the most attended past items",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--out", help="file to write (default: standard output)")
    parser.add_argument(
        "--new-items",
        metavar="FEATURES_DIR",
        help="also rank items absent from training: a directory with items.txt "
        "and <modality>.npy per modality",
    )
    parser.add_argument(
        "--include-train", action="store_true", help="do not leave out training items"
    )
    parser.add_argument("--batch-size", type=int, default=1024, help="users per chunk")
    parser.add_argument(
        "--evidence", type=int, default=3, help="past items per modality (--explain)"
    )
    parser.set_defaults(func=run)


@dataclass
class UserList:
    """One user's recommendations, ready to write."""

    user: str
    items: list[str]
    scores: list[float]
    explanations: list[Explanation] | None


def run(args: argparse.Namespace) -> int:
    if args.format == "parquet" and not args.out:
        raise ConfigError("--format parquet writes a binary file: pass --out FILE.")
    if args.batch_size < 1 or args.evidence < 0:
        raise ConfigError("--batch-size must be >= 1 and --evidence >= 0.")
    saved = load_saved(args.run)
    scorer = Scorer.from_saved(saved)
    if args.new_items:
        ids, features = load_new_items(args.new_items, list(saved.features))
        scorer = scorer.with_new_items(ids, features)
    users = None if args.all_users else saved.user_index(args.user)
    batches = scorer.iter_recommend(
        users,
        args.k,
        exclude_train=not args.include_train,
        batch_size=args.batch_size,
    )

    columns = _columns(scorer) if args.explain else []
    written = 0
    with _output(args.out, binary=args.format == "parquet") as handle:
        writer = WRITERS[args.format](handle, columns, scorer.item_ids)
        for batch in batches:
            lists = _user_lists(scorer, batch, args.explain, args.evidence)
            writer.write(lists)
            written += len(lists)
        writer.close()
    if args.out:
        print(f"wrote recommendations for {written} users to {args.out}")
    return 0


def _user_lists(
    scorer: Scorer, batch: RecommendationBatch, with_explanations: bool, top: int
) -> list[UserList]:
    lists = []
    for user, items, scores in zip(batch.users, batch.items, batch.scores, strict=True):
        filled = items != NO_ITEM
        items, scores = items[filled], scores[filled]
        why = explain(scorer, user, items, top) if with_explanations else None
        lists.append(
            UserList(
                str(scorer.user_ids[user]),
                [str(i) for i in scorer.item_ids[items]],
                [float(s) for s in scores],
                why,
            )
        )
    return lists


def _columns(scorer: Scorer) -> list[str]:
    """The explanation columns of the flat formats."""
    shares = [f"share_{part}" for part in scorer.parts]
    evidence = [f"evidence_{part}" for part in scorer.attribution.edge_weight]
    return shares + evidence


def _flat_rows(lists: list[UserList], item_ids: np.ndarray):
    """(user, rank, item, score, *explanation columns) per recommendation."""
    for entry in lists:
        for rank, (item, score) in enumerate(
            zip(entry.items, entry.scores, strict=True), start=1
        ):
            row = [entry.user, rank, item, score]
            if entry.explanations is not None:
                why = entry.explanations[rank - 1]
                row += list(why.shares.values())
                row += [
                    "|".join(f"{item_ids[e.item]}:{e.weight:.6g}" for e in items)
                    for items in why.evidence.values()
                ]
            yield row


class CsvWriter:
    """``user,rank,item,score`` rows (plus explanation columns)."""

    def __init__(self, handle, columns: list[str], item_ids: np.ndarray) -> None:
        self.writer = csv.writer(handle, lineterminator="\n")
        self.writer.writerow(["user", "rank", "item", "score", *columns])
        self.handle = handle
        self.item_ids = item_ids

    def write(self, lists: list[UserList]) -> None:
        for row in _flat_rows(lists, self.item_ids):
            row[3] = f"{row[3]:.7g}"
            self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        pass


class JsonWriter:
    """A JSON array with one object per user, written as the users come."""

    def __init__(self, handle, columns: list[str], item_ids: np.ndarray) -> None:
        self.handle = handle
        self.count = 0
        self.item_ids = item_ids
        handle.write("[")

    def write(self, lists: list[UserList]) -> None:
        for entry in lists:
            record = {"user": entry.user, "recommendations": []}
            for rank, (item, score) in enumerate(
                zip(entry.items, entry.scores, strict=True), start=1
            ):
                row = {"rank": rank, "item": item, "score": score}
                if entry.explanations is not None:
                    why = entry.explanations[rank - 1].to_dict(self.item_ids)
                    row.update(shares=why["shares"], evidence=why["evidence"])
                record["recommendations"].append(row)
            self.handle.write(("," if self.count else "") + "\n  ")
            self.handle.write(json.dumps(record))
            self.count += 1
        self.handle.flush()

    def close(self) -> None:
        self.handle.write("\n]\n")


class TableWriter:
    """A readable block per user."""

    def __init__(self, handle, columns: list[str], item_ids: np.ndarray) -> None:
        self.handle = handle
        self.item_ids = item_ids

    def write(self, lists: list[UserList]) -> None:
        for entry in lists:
            self.handle.write(f"user {entry.user}\n")
            width = max((len(item) for item in entry.items), default=4)
            for rank, (item, score) in enumerate(
                zip(entry.items, entry.scores, strict=True), start=1
            ):
                line = f"  {rank:>3}. {item:<{width}}  {score:9.4f}"
                if entry.explanations is not None:
                    summary = entry.explanations[rank - 1].summary(self.item_ids)
                    line += f"  {summary}"
                self.handle.write(line + "\n")
        self.handle.flush()

    def close(self) -> None:
        pass


class ParquetWriter:
    """The CSV columns as a Parquet file, one row group per chunk of users."""

    def __init__(self, handle, columns: list[str], item_ids: np.ndarray) -> None:
        import pyarrow as pa

        self.pa = pa
        self.names = ["user", "rank", "item", "score", *columns]
        types = [pa.string(), pa.int32(), pa.string(), pa.float32()]
        types += [
            pa.float64() if c.startswith("share_") else pa.string() for c in columns
        ]
        self.schema = pa.schema(list(zip(self.names, types, strict=True)))
        self.handle = handle
        self.writer = None
        self.item_ids = item_ids

    def write(self, lists: list[UserList]) -> None:
        import pyarrow.parquet as pq

        rows = list(_flat_rows(lists, self.item_ids))
        table = self.pa.table(
            {name: [row[i] for row in rows] for i, name in enumerate(self.names)},
            schema=self.schema,
        )
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        self.writer.close()


WRITERS = {
    "table": TableWriter,
    "csv": CsvWriter,
    "json": JsonWriter,
    "parquet": ParquetWriter,
}


@contextlib.contextmanager
def _output(path: str | None, binary: bool):
    """Standard output, or a temporary file renamed to ``path`` on success."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(
            partial, "wb" if binary else "w", newline=None if binary else ""
        ) as handle:
            yield handle
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
