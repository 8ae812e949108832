"""A planted two-cluster dataset and small models trained on it, once per session.

Users ``u0, u2, ...`` like cluster 0 (items ``i0..i19``) and ``u1, u3, ...``
like cluster 1 (``i20..i39``); each modality's features are the cluster's
centre plus noise. A model that learns anything ranks a user's own cluster
first, which gives recommendation, explanation and cold-start tests a known
answer. Training takes about a second (full batches, one thread).

The HTTP tests share ``serve`` (any model, served by uvicorn on loopback)
and ``client`` (the trained MGAT, served).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from mgat.data import Dataset
from mgat.recommend import Scorer
from mgat.runs import fit
from mgat.saved import SavedModel, load_model

USERS_PER_CLUSTER, ITEMS_PER_CLUSTER = 15, 20
WIDTHS = {"visual": 8, "acoustic": 6}
# MGAT as published (no ID propagation part), so that explanations and cold
# start rest on the modality branches alone; tests/models/test_mgat.py covers
# the ``id_layers`` part.
TINY_MGAT = {
    "embed_dim": 16,
    "latent_dim": 16,
    "latent_dims": {},
    "num_layers": 2,
    "id_layers": 0,
    "similar_items": 0,
    "modality_scale": 1.0,
    "modality_lr_scale": 1.0,
    "id_init_std": None,
}
TRAINING = {
    "epochs": 40,
    "batch_size": 128,
    "lr": 1e-2,
    "eval_every": 40,
    "patience": 100,
    "threads": 1,
    "seed": 0,
}


@dataclass
class Clusters:
    """The planted dataset and what is known about it.

    Attributes:
        dataset: users ``u<n>``, items ``i<n>``, 8 train / 2 valid / 2 test
            items per user, all from the user's cluster.
        centres: modality name to (2, F_m) cluster centres of the features.
        user_cluster: (U,) the cluster each user likes.
        item_cluster: (I,) the cluster of each item.
    """

    dataset: Dataset
    centres: dict[str, np.ndarray]
    user_cluster: np.ndarray
    item_cluster: np.ndarray

    def new_item_features(self, clusters: list[int], seed: int = 5) -> dict:
        """Features of new items drawn like the items of the given clusters."""
        rng = np.random.default_rng(seed)
        return {
            name: (
                c[clusters] + 0.3 * rng.normal(size=(len(clusters), c.shape[1]))
            ).astype(np.float32)
            for name, c in self.centres.items()
        }

    def train_items(self, user: int) -> np.ndarray:
        train = self.dataset.train
        return train[train[:, 0] == user, 1]


def make_clusters(seed: int = 0) -> Clusters:
    rng = np.random.default_rng(seed)
    num_users, num_items = 2 * USERS_PER_CLUSTER, 2 * ITEMS_PER_CLUSTER
    user_cluster = np.arange(num_users) % 2
    item_cluster = np.repeat([0, 1], ITEMS_PER_CLUSTER)

    splits = {"train": [], "valid": [], "test": []}
    for user, cluster in enumerate(user_cluster):
        items = cluster * ITEMS_PER_CLUSTER + rng.permutation(ITEMS_PER_CLUSTER)
        splits["train"] += [(user, int(i)) for i in items[:8]]
        splits["valid"] += [(user, int(i)) for i in items[8:10]]
        splits["test"] += [(user, int(i)) for i in items[10:12]]

    centres = {m: 2 * rng.normal(size=(2, w)) for m, w in WIDTHS.items()}
    noise = {m: 0.3 * rng.normal(size=(num_items, w)) for m, w in WIDTHS.items()}
    features = {
        m: (centres[m][item_cluster] + noise[m]).astype(np.float32) for m in WIDTHS
    }
    dataset = Dataset(
        "clusters",
        [f"u{u}" for u in range(num_users)],
        [f"i{i}" for i in range(num_items)],
        {split: np.array(pairs) for split, pairs in splits.items()},
        features,
    )
    return Clusters(dataset, centres, user_cluster, item_cluster)


@pytest.fixture(scope="session")
def clusters() -> Clusters:
    return make_clusters()


@pytest.fixture
def tiny_mgat_options() -> dict:
    """``fit`` options of the small MGAT the shared runs train."""
    return {**TRAINING, **TINY_MGAT}


def train_run(dataset: Dataset, directory: Path, model: str, options: dict) -> Path:
    threads = torch.get_num_threads()
    try:
        fit(dataset, model=model, out=directory, **TRAINING, **options)
    finally:
        torch.set_num_threads(threads)
    return directory


@pytest.fixture(scope="session")
def mgat_run(clusters, tmp_path_factory) -> Path:
    """A run directory of a 2-layer MGAT trained on the planted clusters."""
    directory = tmp_path_factory.mktemp("runs") / "mgat"
    return train_run(clusters.dataset, directory, "mgat", TINY_MGAT)


@pytest.fixture(scope="session")
def bprmf_run(clusters, tmp_path_factory) -> Path:
    """A run directory of an ID-only model (BPR-MF) on the same data."""
    directory = tmp_path_factory.mktemp("runs") / "bprmf"
    return train_run(clusters.dataset, directory, "bprmf", {"embed_dim": 16})


@pytest.fixture(scope="session")
def saved(mgat_run) -> SavedModel:
    return load_model(mgat_run / "model")


@pytest.fixture(scope="session")
def saved_bprmf(bprmf_run) -> SavedModel:
    return load_model(bprmf_run / "model")


class LiveServer:
    """uvicorn serving an app in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        # Imported here so that tests without the ``serve`` extra still collect.
        import uvicorn

        from mgat.serve import MAX_REQUEST_HEAD_BYTES

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start within 20 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@contextmanager
def serving(source) -> Iterator:
    """An httpx client of ``create_app(source)`` served on loopback."""
    import httpx

    from mgat.serve import create_app

    with (
        LiveServer(create_app(source)) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="session")
def serve():
    """Serve a model on loopback: ``with serve(source) as http: ...``."""
    return serving


@pytest.fixture(scope="module")
def scorer(saved) -> Scorer:
    return Scorer.from_saved(saved)


@pytest.fixture(scope="module")
def client(scorer) -> Iterator:
    """An httpx client of the trained MGAT served on loopback."""
    with serving(scorer) as http:
        yield http
