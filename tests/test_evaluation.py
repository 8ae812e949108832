"""Tests of the full-ranking and sampled evaluation protocols."""

from __future__ import annotations

import logging
from math import log2

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mgat.errors import ConfigError
from mgat.evaluation import (
    FULL_METRICS,
    UserMetrics,
    cold_item_targets,
    evaluate_full,
    evaluate_sampled,
    format_table,
)

# The hand-computed example: 3 users, 6 items. User 2 has no target.
SCORES = np.array(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        [0.3, 0.1, 0.4, 0.1, 0.5, 0.9],
    ],
    dtype=np.float32,
)
TRAIN = {0: [0], 1: [5, 2], 2: [1, 3]}
TEST = {0: [1, 4], 1: [0, 1, 3]}


def csr(rows: dict[int, list[int]], shape: tuple[int, int]) -> sp.csr_matrix:
    """A 0/1 (U, I) matrix from {user: [items]}."""
    users = [u for u, items in rows.items() for _ in items]
    items = [i for row in rows.values() for i in row]
    return sp.csr_matrix((np.ones(len(items)), (users, items)), shape=shape)


def full_scores(matrix: np.ndarray):
    table = torch.as_tensor(matrix)
    return lambda users: table[users]


def pair_scores(matrix: np.ndarray, calls: list | None = None):
    table = torch.as_tensor(matrix)

    def score(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if calls is not None:
            calls.append((users.clone(), items.clone()))
        return table[users[:, None], items]

    return score


def random_problem(seed: int, num_users: int = 40, num_items: int = 30):
    """Random scores without ties and random train/valid/test splits."""
    rng = np.random.default_rng(seed)
    split = rng.choice(4, size=(num_users, num_items), p=[0.65, 0.15, 0.05, 0.15])
    train, valid, test = (
        sp.csr_matrix(split == s, dtype=np.float64) for s in (1, 2, 3)
    )
    scores = rng.standard_normal((num_users, num_items)).astype(np.float32)
    return scores, train, valid, test


def reference_full(scores, targets, exclude, ks):
    """Slow per-user reference: mask, stable argsort, metrics by their formulas."""
    per_user = {f"{m}@{k}": [] for m in FULL_METRICS for k in ks}
    for u in range(scores.shape[0]):
        positives = set(targets[u].indices)
        if not positives:
            continue
        seen = set().union(*(set(split[u].indices) for split in exclude))
        row = scores[u].astype(np.float64)
        row[list(seen)] = -np.inf
        order = np.argsort(-row, kind="stable")

        for k in ks:
            hit = [int(i in positives and i not in seen) for i in order[:k]]
            hit += [0] * (k - len(hit))
            best = min(len(positives), k)
            dcg = sum(h / log2(r + 2) for r, h in enumerate(hit))
            idcg = sum(1 / log2(r + 2) for r in range(best))
            ap = sum(h * sum(hit[: r + 1]) / (r + 1) for r, h in enumerate(hit))
            per_user[f"recall@{k}"].append(sum(hit) / len(positives))
            per_user[f"ndcg@{k}"].append(dcg / idcg)
            per_user[f"precision@{k}"].append(sum(hit) / k)
            per_user[f"hit@{k}"].append(float(any(hit)))
            per_user[f"map@{k}"].append(ap / best)
    return {key: float(np.mean(values)) for key, values in per_user.items()}


def test_hand_computed_example():
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    result = evaluate_full(full_scores(SCORES), test, [train], ks=(2, 5))

    # User 0: item 0 (top score) is a training item and is masked, leaving the
    # ranking 1, 2, 3, 4, 5; the targets {1, 4} sit at ranks 1 and 4.
    # User 1: items 5 and 2 are masked, leaving 4, 3, 1, 0 then the two masked
    # items at -inf; the targets {0, 1, 3} sit at ranks 4, 3 and 2.
    # User 2 has no target and does not count: averages run over users 0 and 1.
    g2, g3, g4 = 1 / log2(3), 1 / log2(4), 1 / log2(5)
    expected = {
        # @2 -- user 0: one hit at rank 1; user 1: one hit at rank 2.
        "recall@2": (1 / 2 + 1 / 3) / 2,
        "precision@2": (1 / 2 + 1 / 2) / 2,
        "hit@2": 1.0,
        # IDCG over min(|T|, 2) = 2 ranks for both users: 1 + 1/log2(3).
        "ndcg@2": (1 / (1 + g2) + g2 / (1 + g2)) / 2,
        # MAP@2: user 0 (1/2) * P@1 = 1/2; user 1 (1/2) * P@2 = 1/4.
        "map@2": (1 / 2 + 1 / 4) / 2,
        # @5 -- user 0: hits at ranks 1, 4; user 1: hits at ranks 2, 3, 4.
        "recall@5": (1 + 1) / 2,
        "precision@5": (2 / 5 + 3 / 5) / 2,
        "hit@5": 1.0,
        "ndcg@5": ((1 + g4) / (1 + g2) + (g2 + g3 + g4) / (1 + g2 + g3)) / 2,
        # MAP@5: user 0 (1/2)(1/1 + 2/4) = 3/4; user 1 (1/3)(1/2 + 2/3 + 3/4) = 23/36.
        "map@5": (3 / 4 + 23 / 36) / 2,
    }
    assert set(result) == set(expected)
    assert result == pytest.approx(expected, abs=1e-12)
    assert list(result)[:3] == ["recall@2", "recall@5", "ndcg@2"]


def test_per_user_values_follow_the_users():
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    summary, detail = evaluate_full(
        full_scores(SCORES), test, [train], ks=(2,), per_user=True
    )

    assert isinstance(detail, UserMetrics)
    np.testing.assert_array_equal(detail.users, [0, 1])
    np.testing.assert_allclose(detail.values["recall@2"], [1 / 2, 1 / 3])
    np.testing.assert_allclose(detail.values["map@2"], [1 / 2, 1 / 4])
    for key, values in detail.values.items():
        assert summary[key] == pytest.approx(values.mean())


def test_excluded_top_item_never_counts():
    # Item 0 has by far the highest score and is both a training item and a
    # target: masked, it can never be a hit, though it still counts in |T|.
    scores = np.array([[10.0, 0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    train, test = csr({0: [0]}, (1, 5)), csr({0: [0, 3]}, (1, 5))
    result = evaluate_full(full_scores(scores), test, [train], ks=(1, 5))

    # Ranking after masking: 4, 3, 2, 1, then 0 at -inf. Target 3 is at rank 2.
    assert result["hit@1"] == 0.0
    assert result["recall@5"] == pytest.approx(1 / 2)
    assert result["precision@5"] == pytest.approx(1 / 5)


def test_exclude_is_the_union_of_splits():
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    valid = csr({0: [1]}, (3, 6))  # hides user 0's best target
    result = evaluate_full(full_scores(SCORES), test, [train, valid], ks=(1,))

    # User 0 ranks 2, 3, 4, 5 (miss at rank 1); user 1 ranks 4 first (miss).
    assert result["hit@1"] == 0.0


def test_all_scores_equal_never_rank_excluded_items():
    # Every score ties; items 0-2 are excluded and items 3-5 are the targets.
    # Whatever order topk breaks the tie in, the top 3 must be exactly {3, 4, 5},
    # since excluded items are at -inf: every metric at K = 3 is then 1.
    scores = np.zeros((2, 6), dtype=np.float32)
    train = csr({0: [0, 1, 2], 1: [0, 1, 2]}, (2, 6))
    test = csr({0: [3, 4, 5], 1: [3, 4, 5]}, (2, 6))
    result = evaluate_full(full_scores(scores), test, [train], ks=(3,))

    assert result == pytest.approx({f"{m}@3": 1.0 for m in FULL_METRICS})


def test_ties_inside_the_targets_do_not_change_metrics():
    # The three targets tie for the top score, the rest tie below: any order
    # of the ties puts the targets at ranks 1-3.
    scores = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]], dtype=np.float32)
    test = csr({0: [1, 2, 4]}, (1, 6))
    result = evaluate_full(full_scores(scores), test, [], ks=(3, 6))

    assert result["ndcg@3"] == pytest.approx(1.0)
    assert result["map@6"] == pytest.approx(1.0)
    assert result["precision@6"] == pytest.approx(1 / 2)


def test_tie_across_the_cutoff_is_deterministic():
    # Items 0 and 1 tie for the top; only item 1 is a target. At K = 1 the hit
    # depends on topk's tie order, so it is 0 or 1, and the same on a rerun.
    scores = np.array([[1.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    test = csr({0: [1]}, (1, 4))
    first = evaluate_full(full_scores(scores), test, [], ks=(1, 2))

    assert first["hit@1"] in (0.0, 1.0)
    assert first["hit@2"] == 1.0
    assert evaluate_full(full_scores(scores), test, [], ks=(1, 2)) == first


def test_more_positives_than_k():
    # Five targets ranked 1-5 of 8 items; at K = 2 only two can be found.
    scores = np.array([[8, 7, 6, 5, 4, 3, 2, 1]], dtype=np.float32)
    test = csr({0: [0, 1, 2, 3, 4]}, (1, 8))
    result = evaluate_full(full_scores(scores), test, [], ks=(2,))

    assert result["recall@2"] == pytest.approx(2 / 5)
    assert result["precision@2"] == pytest.approx(1.0)
    # IDCG and MAP normalise by min(|T|, K) = 2, so a perfect top 2 scores 1.
    assert result["ndcg@2"] == pytest.approx(1.0)
    assert result["map@2"] == pytest.approx(1.0)


def test_users_without_targets_are_left_out():
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    everyone = evaluate_full(full_scores(SCORES), test, [train], ks=(2,))
    some = evaluate_full(
        full_scores(SCORES), test, [train], ks=(2,), users=np.array([2, 1])
    )
    only_one = evaluate_full(full_scores(SCORES[1:2]), test[1:2], [train[1:2]], ks=(2,))

    assert everyone["recall@2"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert some == pytest.approx(only_one)  # user 2 dropped, user 1 alone
    assert some["recall@2"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 1000])
def test_chunking_does_not_change_results(batch_size):
    scores, train, valid, test = random_problem(seed=1)
    whole, whole_users = evaluate_full(
        full_scores(scores), test, [train, valid], batch_size=4096, per_user=True
    )
    chunked, chunked_users = evaluate_full(
        full_scores(scores), test, [train, valid], batch_size=batch_size, per_user=True
    )

    assert chunked == whole
    np.testing.assert_array_equal(chunked_users.users, whole_users.users)
    for key, values in whole_users.values.items():
        np.testing.assert_array_equal(chunked_users.values[key], values)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_straightforward_reference(seed):
    scores, train, valid, test = random_problem(seed)
    ks = (1, 5, 10, 50)  # 50 is above the 30 items: the tail are misses

    result = evaluate_full(full_scores(scores), test, [train, valid], ks=ks)
    expected = reference_full(scores, test, [train, valid], ks)

    assert set(result) == set(expected)
    assert result == pytest.approx(expected, abs=1e-9)


def test_the_score_tensor_is_left_untouched():
    scores, train, valid, test = random_problem(seed=3)
    table = torch.as_tensor(scores.copy())
    # A slice is a view of the table: masking it in place would corrupt the table.
    evaluate_full(lambda users: table[: len(users)], test, [train, valid], ks=(5,))

    np.testing.assert_array_equal(table.numpy(), scores)


def test_restricting_metrics_and_ks_shapes_the_keys():
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    result = evaluate_full(
        full_scores(SCORES), test, [train], ks=np.array([5, 2]), metrics=("map", "hit")
    )

    assert list(result) == ["map@5", "map@2", "hit@5", "hit@2"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ("recall", "auc")}, "unknown metric names \\['auc'\\]"),
        ({"ks": (10, 0)}, "integers K >= 1"),
        ({"ks": (-5,)}, "integers K >= 1"),
        ({"batch_size": 0}, "batch_size is 0"),
        ({"users": np.array([0, 3])}, "expected them in \\[0, 2\\]"),
        ({"users": np.array([1, 1])}, "duplicate"),
        ({"exclude": [sp.csr_matrix((3, 5))]}, "expected the shape of targets"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    arguments = {"exclude": [csr(TRAIN, (3, 6))], **kwargs}
    with pytest.raises(ConfigError, match=message):
        evaluate_full(full_scores(SCORES), csr(TEST, (3, 6)), **arguments)


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        evaluate_full(full_scores(SCORES), csr(TEST, (3, 6)), [], metrics=("mrr",))
    assert all(name in str(error.value) for name in FULL_METRICS)


def test_wrong_score_shape_says_what_was_expected():
    table = torch.as_tensor(SCORES)
    expected = r"returned \(2, 5\) for 2 users; expected .* \(B, I\) = \(2, 6\)"
    with pytest.raises(ConfigError, match=expected):
        evaluate_full(lambda users: table[users, :5], csr(TEST, (3, 6)), [])


def test_nan_scores_are_rejected():
    scores = SCORES.copy()
    scores[1, 3] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        evaluate_full(full_scores(scores), csr(TEST, (3, 6)), [])


def test_no_user_with_targets_is_an_error():
    with pytest.raises(ConfigError, match="no user to evaluate"):
        evaluate_full(full_scores(SCORES), sp.csr_matrix((3, 6)), [])
    with pytest.raises(ConfigError, match="scipy sparse"):
        evaluate_full(full_scores(SCORES), np.ones((3, 6)), [])


def test_cold_item_targets_keeps_only_cold_columns():
    test = csr(TEST, (3, 6))
    cold = cold_item_targets(test, np.array([3, 4]))

    assert cold.shape == test.shape
    assert sorted(zip(*cold.nonzero(), strict=True)) == [(0, 4), (1, 3)]
    result = evaluate_full(full_scores(SCORES), cold, [csr(TRAIN, (3, 6))], ks=(5,))
    # User 0 finds item 4 at rank 4, user 1 finds item 3 at rank 2.
    assert result["ndcg@5"] == pytest.approx((1 / log2(5) + 1 / log2(3)) / 2)

    with pytest.raises(ConfigError, match="expected them in \\[0, 5\\]"):
        cold_item_targets(test, np.array([6]))


def test_format_table_rows_are_metrics_and_columns_cutoffs():
    table = format_table(
        {"recall@20": 0.25, "recall@10": 0.125, "ndcg@10": 0.0625, "hit@20": 1.0}
    )
    assert table == (
        "metric     @10     @20\n"
        "recall  0.1250  0.2500\n"
        "ndcg    0.0625       -\n"
        "hit          -  1.0000"
    )
    with pytest.raises(ConfigError, match="name@K"):
        format_table({"loss": 0.5})


def test_sampled_hand_computed_example(caplog):
    train, test = csr(TRAIN, (3, 6)), csr(TEST, (3, 6))
    with caplog.at_level(logging.WARNING, logger="mgat.evaluation"):
        at_2 = evaluate_sampled(
            pair_scores(SCORES), test, [train], num_negatives=3, k=2
        )
        at_10 = evaluate_sampled(pair_scores(SCORES), test, [train], num_negatives=3)

    # User 0 never met items 2, 3, 5: exactly 3, so those are its negatives
    # whatever the seed. Candidates by score: 1, 2, 3, 4, 5; positives at 1, 4.
    # User 1 never met only item 4 (a warning says so): candidates 4, 3, 1, 0,
    # positives at ranks 2, 3, 4. User 2 has no target.
    g2, g3, g4 = 1 / log2(3), 1 / log2(4), 1 / log2(5)
    assert at_2 == pytest.approx(
        {
            "recall@2": (1 / 2 + 1 / 3) / 2,
            "ndcg@2": (1 / (1 + g2) + g2 / (1 + g2)) / 2,
            "precision@2": (1 / 2 + 1 / 2) / 2,
            "hit@2": 1.0,
            # DCG over the number of positives: 1/2 and (1/log2 3)/3.
            "ndcg_bypos@2": (1 / 2 + g2 / 3) / 2,
        }
    )
    assert at_10 == pytest.approx(
        {
            "recall@10": 1.0,
            "ndcg@10": ((1 + g4) / (1 + g2) + (g2 + g3 + g4) / (1 + g2 + g3)) / 2,
            "precision@10": (2 / 10 + 3 / 10) / 2,
            "hit@10": 1.0,
            "ndcg_bypos@10": ((1 + g4) / 2 + (g2 + g3 + g4) / 3) / 2,
        }
    )
    assert "1 of 2 users have fewer than 3 items" in caplog.text


def test_sampled_negatives_avoid_every_interaction():
    scores, train, valid, test = random_problem(seed=4, num_users=30, num_items=200)
    calls: list = []
    evaluate_sampled(
        pair_scores(scores, calls), test, [train, valid], num_negatives=20, batch_size=8
    )

    assert sum(len(users) for users, _ in calls) == len(np.unique(test.nonzero()[0]))
    seen = (train + valid + test).tocsr()
    for users, items in calls:
        for user, row in zip(users.tolist(), items[:, :20].tolist(), strict=True):
            assert len(set(row)) == 20  # drawn without replacement
            assert not set(row) & set(seen[user].indices)


def test_sampled_is_reproducible_with_the_seed():
    scores, train, valid, test = random_problem(seed=5, num_users=30, num_items=200)

    def negatives(seed):
        calls: list = []
        result = evaluate_sampled(
            pair_scores(scores, calls), test, [train], num_negatives=20, seed=seed
        )
        return result, torch.cat([items[:, :20] for _, items in calls])

    first, first_items = negatives(seed=0)
    again, again_items = negatives(seed=0)
    other, other_items = negatives(seed=1)

    assert first == again
    assert torch.equal(first_items, again_items)
    assert not torch.equal(first_items, other_items)


def test_sampled_negatives_are_uniform():
    # 2000 identical users who met items 0 and 1 of 10: each of the 8 others
    # is one of the 4 negatives with probability 1/2, about 1000 +- 22 times.
    seen = sp.csr_matrix(np.tile([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], (2000, 1)))
    test = sp.csr_matrix(np.tile([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], (2000, 1)))
    calls: list = []
    scores = np.zeros((2000, 10), dtype=np.float32)
    evaluate_sampled(pair_scores(scores, calls), test, [seen], num_negatives=4)

    drawn = torch.cat([items[:, :4] for _, items in calls]).flatten()
    counts = np.bincount(drawn.numpy(), minlength=10)
    assert counts[:2].sum() == 0
    assert np.all(np.abs(counts[2:] - 1000) < 120)


def test_ndcg_bypos_differs_only_with_several_positives():
    scores, train, valid, several = random_problem(seed=6, num_users=30, num_items=200)
    # One held-out item per user: the first of its several.
    first = several.indices[several.indptr[:-1]]
    single = csr({u: [int(i)] for u, i in enumerate(first)}, several.shape)

    one = evaluate_sampled(pair_scores(scores), single, [train], num_negatives=50)
    many = evaluate_sampled(pair_scores(scores), several, [train], num_negatives=50)

    # One positive: the ideal DCG is 1, the number of positives too.
    assert one["ndcg_bypos@10"] == pytest.approx(one["ndcg@10"])
    # Several: the ideal DCG over min(|P|, K) ranks is below |P|.
    assert np.diff(several.indptr).min() > 1
    assert many["ndcg_bypos@10"] < many["ndcg@10"]


def test_sampled_ties_count_against_the_positives():
    # Constant scores: every negative ties with every positive and ranks above it.
    _, train, valid, test = random_problem(seed=7, num_users=20, num_items=100)
    scores = np.ones((20, 100), dtype=np.float32)
    result = evaluate_sampled(
        pair_scores(scores), test, [train, valid], num_negatives=10
    )

    assert result == {key: 0.0 for key in result}


def reference_sampled(scores, targets, calls, num_negatives, k):
    """Slow reference over the candidates actually drawn: a positive's rank is the
    number of negatives scored >= it plus the positives scored strictly above."""
    per_user = {m: [] for m in ("recall", "ndcg", "precision", "hit", "ndcg_bypos")}
    for users, items in calls:
        for user, row in zip(users.tolist(), items.tolist(), strict=True):
            positives = targets[user].indices
            negatives = np.array(row[:num_negatives])
            s_neg, s_pos = scores[user, negatives], scores[user, positives]
            ranks = [
                int((s_neg >= s).sum() + (s_pos > s).sum()) for s in s_pos.tolist()
            ]
            hits = [r for r in ranks if r < k]
            dcg = sum(1 / log2(r + 2) for r in hits)
            idcg = sum(1 / log2(r + 2) for r in range(min(len(positives), k)))
            per_user["recall"].append(len(hits) / len(positives))
            per_user["ndcg"].append(dcg / idcg)
            per_user["precision"].append(len(hits) / k)
            per_user["hit"].append(float(bool(hits)))
            per_user["ndcg_bypos"].append(dcg / len(positives))
    return {f"{m}@{k}": float(np.mean(v)) for m, v in per_user.items()}


@pytest.mark.parametrize(("seed", "k"), [(0, 10), (1, 3)])
def test_sampled_matches_a_straightforward_reference(seed, k):
    scores, train, valid, test = random_problem(seed, num_users=30, num_items=200)
    calls: list = []
    result = evaluate_sampled(
        pair_scores(scores, calls), test, [train, valid], num_negatives=25, k=k
    )

    expected = reference_sampled(scores, test, calls, 25, k)
    assert result == pytest.approx(expected, abs=1e-9)


def test_sampled_wrong_shape_says_b_c():
    with pytest.raises(ConfigError, match=r"\(B, C\)"):
        evaluate_sampled(
            lambda users, items: torch.zeros(len(users), 2),
            csr(TEST, (3, 6)),
            [csr(TRAIN, (3, 6))],
            num_negatives=3,
        )
