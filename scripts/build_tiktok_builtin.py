"""Rebuild the bundled ``tiktok`` dataset from the project's shared data copy.

Usage: python scripts/build_tiktok_builtin.py SHARED_TIKTOK_DIR

Reads ``edges.npz`` (int32 train/val/test pairs) and the float16 feature arrays
described in PROVENANCE.md and writes the package's dataset directory. Features
stay float16 on disk (half the size); ``Dataset`` widens them to float32 on load.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src/mgat/data/builtin/tiktok"
SPLIT_NAMES = {"train": "train", "val": "valid", "test": "test"}


def main(source: Path) -> None:
    edges = np.load(source / "edges.npz")
    num_users, num_items = (int(n) for n in edges["shape"])
    frames = [
        pd.DataFrame({"user": pairs[:, 0], "item": pairs[:, 1], "split": split})
        for key, split in SPLIT_NAMES.items()
        for pairs in [edges[key]]
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    pd.concat(frames).to_csv(OUT / "interactions.csv.gz", index=False)
    (OUT / "users.txt").write_text("\n".join(map(str, range(num_users))) + "\n")
    (OUT / "items.txt").write_text("\n".join(map(str, range(num_items))) + "\n")
    for name, filename in (
        ("visual", "image_feat.npy"),
        ("acoustic", "audio_feat.npy"),
    ):
        np.save(OUT / f"{name}.npy", np.load(source / filename).astype(np.float16))
    shutil.copy(source / "PROVENANCE.md", OUT / "PROVENANCE.md")
    manifest = {
        "format": "mgat-dataset",
        "version": 1,
        "name": "tiktok",
        "modalities": {"visual": "visual.npy", "acoustic": "acoustic.npy"},
        "meta": {
            "description": "TikTok micro-video interactions, DiffMM split",
            "citation": (
                "Jiang et al., DiffMM: Multi-Modal Diffusion Model for "
                "Recommendation, ACM MM 2024; Wei et al., MMGCN, ACM MM 2019"
            ),
            "provenance": "PROVENANCE.md",
        },
    }
    (OUT / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
