"""The HTTP service, run by uvicorn on a loopback port and called with httpx.

The ``client`` and ``scorer`` fixtures (the trained MGAT, served) live in
conftest.py, shared with test_serve_fuzz.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest


@pytest.fixture(scope="module")
def id_only_client(serve, bprmf_run) -> Iterator[httpx.Client]:
    with serve(bprmf_run) as http:
        yield http


def test_health_model_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}

    info = client.get("/model").json()
    assert info["model"] == "mgat"
    assert (info["num_users"], info["num_items"]) == (30, 40)
    assert info["modalities"] == {"visual": 8, "acoustic": 6}
    assert info["scores_new_items"] is True
    assert info["config"]["num_layers"] == 2

    paths = client.get("/openapi.json").json()["paths"]
    assert "/users/{user_id}/recommendations" in paths
    assert "/items/score-new" in paths


def test_user_recommendations(client, scorer, clusters):
    body = client.get("/users/u4/recommendations", params={"k": 5}).json()
    items, scores = scorer.recommend([4], k=5)

    assert body["user"] == "u4" and body["k"] == 5
    rows = body["recommendations"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["item"] for r in rows] == [f"i{i}" for i in items[0]]
    np.testing.assert_allclose([r["score"] for r in rows], scores[0], rtol=1e-6)
    owned = {f"i{i}" for i in clusters.train_items(4)}
    assert not owned & {r["item"] for r in rows}
    assert all(r["explanation"] is None for r in rows)


def test_recommendations_with_explanations_and_exclusions(client):
    plain = client.get("/users/u1/recommendations?k=3").json()["recommendations"]
    banned = [r["item"] for r in plain[:2]]
    query = "k=3&explain=true&" + "&".join(f"exclude={i}" for i in banned)
    rows = client.get(f"/users/u1/recommendations?{query}").json()["recommendations"]

    assert not {r["item"] for r in rows} & set(banned)
    assert rows[0]["item"] == plain[2]["item"]
    for row in rows:
        shares = row["explanation"]["shares"]
        assert sum(shares.values()) == pytest.approx(row["score"], rel=1e-5)
        assert set(row["explanation"]["evidence"]) == {"visual", "acoustic"}


def test_scores_by_pairs_and_by_user(client, scorer):
    pairs = [["u0", "i1"], ["u3", "i30"], ["u5", "i2"]]
    by_pairs = client.post("/scores", json={"pairs": pairs}).json()["scores"]
    expected = scorer.score([0, 3, 5], [1, 30, 2])
    np.testing.assert_allclose([s["score"] for s in by_pairs], expected, rtol=1e-6)
    assert [s["user"] for s in by_pairs] == ["u0", "u3", "u5"]

    by_user = client.post("/scores", json={"user": "u3", "items": ["i30", "i2"]})
    values = [s["score"] for s in by_user.json()["scores"]]
    np.testing.assert_allclose(values, scorer.score([3, 3], [30, 2]), rtol=1e-6)


def test_new_user_recommendations(client, clusters):
    given = [f"i{i}" for i in clusters.train_items(1)[:3]]
    response = client.post(
        "/recommendations/new-user", json={"items": given, "k": 6, "explain": True}
    )
    rows = response.json()["recommendations"]
    assert len(rows) == 6
    assert all(int(r["item"][1:]) >= 20 for r in rows)  # cluster 1
    assert not {r["item"] for r in rows} & set(given)
    for row in rows:
        shares = row["explanation"]["shares"]
        assert sum(shares.values()) == pytest.approx(row["score"], rel=1e-5)


def test_score_new_items(client, clusters):
    features = clusters.new_item_features([1, 0])
    body = {
        "user": "u0",
        "features": {name: rows.tolist() for name, rows in features.items()},
        "ids": ["b-like", "a-like"],
    }
    scores = client.post("/items/score-new", json=body).json()["scores"]
    assert [s["item"] for s in scores] == ["b-like", "a-like"]
    assert [s["rank"] for s in scores] == [2, 1]  # u0 likes cluster 0


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("get", "/users/nobody/recommendations", None, "unknown user id"),
        ("get", "/users/u0/recommendations?exclude=zz", None, "unknown item id"),
        ("post", "/scores", {"pairs": [["u0", "zz"]]}, "unknown item id"),
        ("post", "/scores", {"user": "ghost", "items": ["i1"]}, "unknown user id"),
        ("post", "/scores", {"user": 5, "items": ["i1"]}, "unknown user id(s) ['5']"),
        ("post", "/recommendations/new-user", {"items": ["zz"]}, "unknown item"),
    ],
)
def test_unknown_ids_are_404(client, method, path, body, message):
    response = client.request(method, path, json=body)
    assert response.status_code == 404
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/users/u0/recommendations?k=0", None),
        ("get", "/users/u0/recommendations?k=41", None),
        ("get", "/users/u0/recommendations?k=many", None),
        ("post", "/scores", {"user": "u0"}),
        ("post", "/scores", {"pairs": []}),
        ("post", "/scores", {"pairs": [["u0"]]}),
        ("post", "/scores", {"pairs": [["u0", "i1"]], "user": "u0"}),
        ("post", "/scores", [1, 2]),
        ("post", "/recommendations/new-user", {"items": ["i1"], "k": 0}),
        ("post", "/recommendations/new-user", {"items": ["i1"], "k": 41}),
        ("post", "/recommendations/new-user", {"items": []}),
        ("post", "/items/score-new", {"user": "u0", "features": {}}),
        ("post", "/items/score-new", {"user": "u0", "features": {"visual": [[1]]}}),
        (
            "post",
            "/items/score-new",
            {"user": "u0", "features": {"visual": [[1, 2], [1]]}},
        ),
    ],
)
def test_bad_requests_are_422(client, method, path, body):
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"user": "u0", "items": ["i1"]',
        b"not json",
        b'{"user": "u0", "items": [null]}',
    ],
)
def test_malformed_json_is_422(client, raw):
    headers = {"content-type": "application/json"}
    response = client.post("/scores", content=raw, headers=headers)
    assert response.status_code == 422


def test_nan_features_are_422_not_500(client):
    raw = b'{"user": "u0", "features": {"visual": [[NaN]], "acoustic": [[1]]}}'
    headers = {"content-type": "application/json"}
    response = client.post("/items/score-new", content=raw, headers=headers)
    assert response.status_code == 422


def test_id_only_model_refuses_new_items_with_422(id_only_client, clusters):
    assert id_only_client.get("/model").json()["scores_new_items"] is False
    features = clusters.new_item_features([0])
    body = {"user": "u0", "features": {k: v.tolist() for k, v in features.items()}}
    response = id_only_client.post("/items/score-new", json=body)
    assert response.status_code == 422
    assert "content model" in response.json()["detail"]

    rows = id_only_client.get("/users/u0/recommendations?k=2&explain=true").json()
    shares = rows["recommendations"][0]["explanation"]["shares"]
    assert list(shares) == ["id"]


def test_concurrent_clients_get_consistent_answers(client, scorer):
    expected = {
        f"u{user}": [f"i{i}" for i in scorer.recommend([user], k=4)[0][0]]
        for user in range(scorer.num_users)
    }

    def ask(user: str) -> tuple[str, int, list[str]]:
        response = client.get(f"/users/{user}/recommendations", params={"k": 4})
        items = [r["item"] for r in response.json()["recommendations"]]
        return user, response.status_code, items

    users = [f"u{n % scorer.num_users}" for n in range(120)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, users))

    assert all(status == 200 for _, status, _ in answers)
    assert all(items == expected[user] for user, _, items in answers)
