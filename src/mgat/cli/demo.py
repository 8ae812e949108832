"""``mgat demo``: the main job on the bundled dataset, end to end.

Trains MGAT on the built-in TikTok set (time-capped so it finishes in a few
minutes on two CPU cores), evaluates it on the test split with both protocols,
and prints a few users' recommendations with their explanations.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm.auto import tqdm

from mgat.evaluation import format_table
from mgat.recommend import Scorer, explain, recommend
from mgat.runs import fit
from mgat.saved import load_model

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo", help="train, evaluate and recommend on the bundled TikTok set"
    )
    demo.add_argument("--out", default="runs/demo", help="run directory to write")
    demo.add_argument("--dataset", default="tiktok")
    demo.add_argument("--budget", type=float, default=240.0, help="training seconds")
    demo.add_argument("--users", type=int, default=3, help="users to show")
    demo.add_argument("--k", type=int, default=5)
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"Training MGAT on {args.dataset} (at most {args.budget:.0f} s)...")
    result = fit(
        args.dataset,
        model="mgat",
        out=args.out,
        budget_s=args.budget,
        progress=lambda it, **kw: tqdm(it, leave=False, **kw),
    )
    print(
        f"\nBest validation epoch {result.result.best_epoch} "
        f"({result.result.stopped_by}). Test, full ranking:"
    )
    print(format_table(result.result.test))

    saved = load_model(Path(args.out) / "model")
    scorer = Scorer.from_saved(saved)  # representations computed once
    print(f"\nTop {args.k} recommendations (original ids) with explanations:")
    for user in saved.user_ids[: args.users]:
        _show_user(saved, scorer, user, args.k)
    print(f"\nRun directory: {args.out}")
    return 0


def _show_user(saved, scorer: Scorer, user: str, k: int) -> None:
    index = saved.user_index([user])
    items, scores = recommend(scorer, index, k)
    print(f"user {user}:")
    item_ids = saved.item_ids[items[0]]
    explanations = explain(scorer, index[0], items[0])
    for rank, (item, score, why) in enumerate(
        zip(item_ids, scores[0].tolist(), explanations, strict=True), start=1
    ):
        print(f"  {rank}. item {item}  score {score:.3f}  {why.summary()}")
