"""MGAT's gated attention layer and model on tiny graphs."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgat.config import build
from mgat.graph import segment_sum
from mgat.models import ModelData, create_model
from mgat.models.mgat import MGATConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from reference_mgat import reference_branch, reference_layer  # noqa: E402

U, I = 7, 9


def tiny_data(seed: int = 0) -> ModelData:
    rng = np.random.default_rng(seed)
    pairs = {(u, int(rng.integers(I))) for u in range(U) for _ in range(3)}
    pairs |= {(int(rng.integers(U)), i) for i in range(I)}  # every item has an edge
    features = {
        "visual": rng.normal(size=(I, 6)).astype(np.float32),
        "acoustic": rng.normal(size=(I, 4)).astype(np.float32),
    }
    return ModelData(U, I, np.array(sorted(pairs)), features)


VARIANTS = list(
    itertools.product(
        ("inner", "concat", "bi"), ("softmax", "multiply"), ("neighbour", "target")
    )
)


def model_for(gate, placement, degree, **extra):
    torch.manual_seed(0)
    values = dict(
        gate=gate,
        gate_placement=placement,
        gate_degree=degree,
        embed_dim=5,
        latent_dim=4,
        latent_dims={},
        **extra,
    )
    return create_model("mgat", tiny_data(), values).double()


@pytest.mark.parametrize(("gate", "placement", "degree"), VARIANTS)
def test_layer_matches_reference_outputs_and_gradients(gate, placement, degree):
    model = model_for(gate, placement, degree)
    branch = model.branches["visual"]
    layer, graph = branch.layers[0], model.graph
    x = torch.randn(graph.num_nodes, 4, dtype=torch.double, requires_grad=True)

    ours, trace = layer(graph, x, model.id_embedding)
    theirs, weight, gate_values = reference_layer(layer, graph, x, model.id_embedding)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trace.weight, weight, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(trace.gate, gate_values, atol=1e-5, rtol=1e-5)

    upstream = torch.randn_like(ours)
    params = [x, *layer.parameters(), model.id_embedding]
    grads = torch.autograd.grad((ours * upstream).sum(), params, allow_unused=True)
    expected = torch.autograd.grad((theirs * upstream).sum(), params, allow_unused=True)
    for got, want in zip(grads, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_multi_layer_branch_matches_reference():
    model = model_for("inner", "softmax", "neighbour", num_layers=3)
    branch = model.branches["acoustic"]
    ours, _ = branch(model.graph, model.id_embedding)
    theirs = reference_branch(branch, model.graph, model.id_embedding)
    assert ours.shape == (U + I, 3 * 5)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("gate", "placement", "degree"), VARIANTS)
def test_attention_is_a_distribution_and_gate_in_unit_interval(gate, placement, degree):
    model = model_for(gate, placement, degree)
    _, traces = model.modality_representations(with_traces=True)
    graph = model.graph
    for layer_traces in traces.values():
        for trace in layer_traces:
            assert ((trace.gate > 0) & (trace.gate < 1)).all()
            totals = segment_sum(graph, trace.weight)
            has_edges = graph.degree > 0
            if placement == "softmax":
                torch.testing.assert_close(
                    totals[has_edges], torch.ones_like(totals[has_edges])
                )
            else:  # the gate scales a softmax: each node's weights sum to <= 1
                assert (totals[has_edges] <= 1 + 1e-9).all()


@pytest.mark.parametrize("gate", ["inner", "concat", "bi"])
@pytest.mark.parametrize("fusion", ["mean", "sum", "weighted"])
def test_gradients_reach_every_parameter(gate, fusion):
    model = model_for(
        gate, "softmax", "neighbour", num_layers=2, modality_fusion=fusion
    )
    users = torch.arange(U)
    pos = torch.tensor([1, 2, 3, 4, 5, 6, 7])
    neg = torch.tensor([0, 8, 0, 8, 0, 8, 0])
    model.loss(users, pos, neg, reg_weight=1e-3).total.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_representation_shapes_and_layer_combine():
    data = tiny_data()
    concat = create_model("mgat", data, dict(embed_dim=5, num_layers=2))
    summed = create_model(
        "mgat", data, dict(embed_dim=5, num_layers=2, layer_combine="sum")
    )
    users, items = concat.representations()
    assert users.shape == (U, 10) and items.shape == (I, 10)
    assert summed.representations()[0].shape == (U, 5)
    assert torch.isfinite(users).all() and torch.isfinite(items).all()


def test_every_learnable_tensor_is_a_parameter():
    model = create_model("mgat", tiny_data(), {})
    names = {name for name, _ in model.named_parameters()}
    assert "id_embedding" in names
    assert {f"branches.{m}.preference" for m in ("visual", "acoustic")} <= names
    assert all(not name.startswith("graph_") for name in names)


def test_cpu_training_is_deterministic():
    def run_once():
        torch.manual_seed(3)
        model = create_model("mgat", tiny_data(), dict(embed_dim=5, num_layers=2))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(3):
            loss = model.loss(
                torch.arange(U), torch.arange(U), torch.arange(U) + 1
            ).total
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.embed()[1]

    torch.testing.assert_close(run_once(), run_once(), atol=0, rtol=0)


def test_config_rejects_unknown_gate_and_bad_layers():
    with pytest.raises(ValueError, match="expected one of inner, concat, bi"):
        build(MGATConfig, {"gate": "dot"})
    with pytest.raises(ValueError, match="num_layers: expected >= 1"):
        build(MGATConfig, {"num_layers": "0"})
    with pytest.raises(ValueError, match="valid options: embed_dim"):
        build(MGATConfig, {"layers": 2})


def test_model_without_modalities_is_refused():
    data = tiny_data()
    data.features = {}
    with pytest.raises(ValueError, match="at least one item modality"):
        create_model("mgat", data, {})


def test_collaborative_part_is_lightgcn_propagation_beside_the_modalities():
    torch.manual_seed(0)
    data = tiny_data()
    model = create_model(
        "mgat", data, dict(embed_dim=5, id_layers=2, modality_scale=0.5)
    ).double()
    graph = model.graph
    adjacency = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.double)
    adjacency[graph.row, graph.col] = 1.0
    norm = adjacency.sum(1).clamp(min=1).rsqrt()
    propagate = norm[:, None] * adjacency * norm[None, :]
    e0 = model.id_embedding
    expected = (e0 + propagate @ e0 + propagate @ propagate @ e0) / 3
    torch.testing.assert_close(model.collaborative(), expected)

    users, items = model.embed()
    reps, _ = model.modality_representations()
    weights = model.modality_weights()
    modal = sum(w * r for w, r in zip(weights, reps.values(), strict=True))
    full = torch.cat([0.5 * modal, expected], 1).detach()
    torch.testing.assert_close(torch.cat([users, items]), full)

    parts = model.attribution().parts
    assert set(parts) == {"visual", "acoustic", "id"}
    torch.testing.assert_close(sum(p[0] for p in parts.values()), users)
    torch.testing.assert_close(sum(p[1] for p in parts.values()), items)
    model.float()  # new item features enter as float32
    new_items = model.new_item_representations(
        {m: f[:2] for m, f in data.features.items()}
    )
    assert new_items.shape == (2, items.shape[1])
    assert model.fold_in_users([[0, 1], [2]]).shape == (2, users.shape[1])


def test_branches_train_at_their_own_learning_rate():
    model = create_model("mgat", tiny_data(), dict(modality_lr_scale=0.1))
    rest, branches = model.parameter_groups(1e-3)
    assert rest["lr"] == 1e-3 and branches["lr"] == pytest.approx(1e-4)
    grouped = [id(p) for group in (rest, branches) for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert {id(p) for p in model.branches.parameters()} == {
        id(p) for p in branches["params"]
    }


def test_unseen_items_enter_with_the_mean_seen_item_id():
    data = tiny_data()
    unseen = [2, 5]
    data.train = data.train[~np.isin(data.train[:, 1], unseen)]
    model = create_model("mgat", data, dict(embed_dim=5, id_layers=2))
    ids = model.node_ids()
    items = model.id_embedding[U:]
    seen = [i for i in range(I) if i not in unseen]

    torch.testing.assert_close(ids[U + 2], items[seen].mean(0))
    torch.testing.assert_close(ids[U + 5], items[seen].mean(0))
    torch.testing.assert_close(ids[U + seen[0]], items[seen[0]])
    # The unseen rows themselves reach no score, so a change to them is inert.
    before = model.representations()[1]
    with torch.no_grad():
        model.id_embedding[U + 2] += 10.0
    torch.testing.assert_close(model.representations()[1], before)


def test_frozen_embeddings_stay_while_the_layers_learn():
    model = create_model("mgat", tiny_data(), dict(embed_dim=5, train_embeddings=False))
    frozen = {"id_embedding", "branches.visual.preference"}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    users = torch.arange(U)
    model.loss(users, users % I, (users + 3) % I).total.backward()
    optimizer.step()

    after = dict(model.named_parameters())
    assert frozen <= set(after)  # still parameters: saved and loaded with the rest
    for name in frozen:
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(
        after["branches.visual.project.weight"],
        before["branches.visual.project.weight"],
    )


def two_layer_backward(gate, recompute):
    """A two-layer model and its BPR loss on a fixed batch, after backward."""
    users = torch.arange(U)
    model = model_for(gate, "multiply", "target", num_layers=2, recompute=recompute)
    loss = model.loss(users, users % I, (users + 4) % I, reg_weight=1e-3).total
    loss.backward()
    return model, loss.detach()


@pytest.mark.parametrize("gate", ["inner", "bi"])
def test_recompute_gives_the_same_loss_and_gradients(gate):
    results = []
    for recompute in (False, True):
        model, loss = two_layer_backward(gate, recompute)
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((loss, grads))

    (loss, grads), (loss_r, grads_r) = results
    torch.testing.assert_close(loss_r, loss)
    assert grads_r.keys() == grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grads_r[name], grad, msg=name)


@pytest.mark.parametrize("gate", ["inner", "bi"])
def test_recompute_runs_the_sparse_kernels_no_more_often(gate):
    # The recomputation reuses the first pass's SDDMM and SpMM results.
    calls = []
    for recompute in (False, True):
        with torch.profiler.profile() as profile:
            two_layer_backward(gate, recompute)
        names = [event.name for event in profile.events()]
        calls.append(
            (names.count("aten::sparse_sampled_addmm"), names.count("aten::addmm_"))
        )
    assert calls[0][0] > 0 and calls[0][1] > 0
    assert calls[1] == calls[0]


def test_item_dropout_scores_dropped_items_as_if_they_were_new():
    data = tiny_data()
    model = create_model("mgat", data, dict(embed_dim=5, id_layers=2, item_dropout=1.0))
    new = sum(model.new_item_parts(data.features).values())

    model.train()
    _, items = model.representations()
    torch.testing.assert_close(items, new)
    # Only training drops items: evaluation scores every item from its graph.
    model.eval()
    assert not torch.allclose(model.representations()[1], new)


def test_item_dropout_is_a_fraction():
    with pytest.raises(ValueError, match="item_dropout: expected"):
        build(MGATConfig, {"item_dropout": 1.5})


def test_content_bias_adds_a_learned_item_bias_to_every_score():
    data = tiny_data()
    model = create_model(
        "mgat", data, dict(embed_dim=5, id_layers=2, content_bias=True)
    )
    users, items = model.representations()
    plain = users[:, :-2] @ items[:, :-2].T
    with torch.no_grad():
        for linear in model.content_bias.values():
            linear.weight.normal_()
    users_b, items_b = model.representations()
    bias = sum(
        torch.as_tensor(data.features[m]) @ model.content_bias[m].weight.squeeze(0)
        for m in ("visual", "acoustic")
    )
    torch.testing.assert_close(users_b @ items_b.T, plain + bias)

    # The parts still add up, for trained items and for new ones.
    attribution = model.attribution()
    user_sum = sum(u for u, _ in attribution.parts.values())
    item_sum = sum(i for _, i in attribution.parts.values())
    torch.testing.assert_close(user_sum, users_b.detach())
    torch.testing.assert_close(item_sum, items_b.detach())
    new = sum(model.new_item_parts(data.features).values())
    assert new.shape == items_b.shape
    torch.testing.assert_close(new[:, -2:].sum(1), bias.detach())
    folded = sum(model.fold_in_parts([[0, 1]]).values())
    assert folded.shape == (1, users_b.shape[1])
    torch.testing.assert_close(folded[0, -2:], torch.ones(2, dtype=folded.dtype))


def test_content_factors_add_vbpr_content_term_per_modality():
    data = tiny_data()
    options = dict(embed_dim=5, content_factors=3, content_bias=True)
    model = create_model("mgat", data, options)
    users, items = model.representations()
    width = 5 + 2 * 4  # D plus, per modality, a bias column and 3 factors
    assert users.shape == (U, width) and items.shape == (I, width)

    expected = users[:, :5] @ items[:, :5].T
    for m in ("visual", "acoustic"):
        f = torch.as_tensor(data.features[m])
        bias = model.content_bias[m](f).squeeze(-1)
        expected = (
            expected + bias + model.content_users[m] @ model.content_items[m](f).T
        )
    torch.testing.assert_close(users @ items.T, expected)

    users[0].sum().backward()
    assert model.content_users["visual"].grad[0].abs().sum() > 0
    assert model.content_users["visual"].grad[1:].abs().sum() == 0
    folded = sum(model.fold_in_parts([[0, 1]]).values())
    mean_theta = model.content_users["visual"].mean(0)
    torch.testing.assert_close(folded[0, 6:9], mean_theta.detach())


def test_similar_items_add_the_mean_id_of_each_items_content_neighbours():
    data = tiny_data()
    model = create_model("mgat", data, dict(embed_dim=5, id_layers=2, similar_items=2))
    neighbours = model.item_neighbours
    assert neighbours.shape == (I, 4)  # two per modality
    assert not (neighbours == torch.arange(I).unsqueeze(1)).any()

    attribution = model.attribution()
    users, items = attribution.parts["similar_items"]
    assert users.abs().sum() == 0
    ids = model.id_embedding[U:].detach()
    expected = ids[neighbours].mean(1)
    torch.testing.assert_close(items[:, -5:], expected)
    assert items[:, :-5].abs().sum() == 0

    # A new item that looks exactly like item 3 borrows item 3's neighbours
    # plus item 3 itself (it is not excluded, being no training item).
    features = {m: f[3:4] for m, f in data.features.items()}
    part = model.new_item_parts(features)["similar_items"]
    near = model._neighbours_of({m: torch.as_tensor(f) for m, f in features.items()})
    assert (near == 3).sum() == 2  # first in both modalities
    torch.testing.assert_close(part[0, -5:], ids[near[0]].mean(0))
    folded = model.fold_in_parts([[0, 1]])
    assert folded["similar_items"].abs().sum() == 0


def test_similar_items_need_id_layers_and_shrink_to_the_catalogue(caplog):
    with pytest.raises(ValueError, match="Set id_layers"):
        build(MGATConfig, {"similar_items": 3})
    model = create_model("mgat", tiny_data(), dict(id_layers=1, similar_items=50))
    assert model.item_neighbours.shape == (I, 2 * (I - 1))
    assert "only 8 other items" in caplog.text


def test_fusion_init_xavier_draws_the_released_codes_scale():
    options = dict(embed_dim=64, latent_dim=64, latent_dims={})
    stds = {}
    for init in ("default", "xavier"):
        torch.manual_seed(0)
        model = create_model("mgat", tiny_data(), dict(options, fusion_init=init))
        layer = model.branches["visual"].layers[0]
        stds[init] = [
            float(m.weight.detach().std())
            for m in (layer.message_to_id, layer.self_to_id)
        ]
    assert stds["xavier"] == pytest.approx([(2 / 128) ** 0.5] * 2, rel=0.05)
    assert stds["default"] == pytest.approx([(1 / 64 / 3) ** 0.5] * 2, rel=0.05)


def test_the_benchmarks_reference_model_scores_like_the_library():
    from bench_reference import ReferenceMGAT

    data = tiny_data()
    options = dict(embed_dim=5, latent_dim=4, latent_dims={}, id_layers=2)
    model = create_model("mgat", data, dict(options, similar_items=2)).double()
    reference = create_model("mgat", data, dict(options, similar_items=2)).double()
    reference.load_state_dict(model.state_dict())
    reference.__class__ = ReferenceMGAT
    pairs = zip(model.representations(), reference.representations(), strict=True)
    for mine, theirs in pairs:
        torch.testing.assert_close(theirs, mine)


def test_bf16_autocast_keeps_the_sparse_kernels_and_the_loss_in_float32():
    torch.manual_seed(0)
    model = create_model("mgat", tiny_data(), dict(embed_dim=8, num_layers=2))
    users, pos, neg = torch.arange(U), torch.arange(U), torch.arange(U) + 1
    exact = model.loss(users, pos, neg).total
    exact.backward()
    exact_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.loss(users, pos, neg).total
        weight = (
            model.branches["visual"]
            .layers[0](model.graph, torch.randn(U + I, 256), model.node_ids())[1]
            .weight
        )
    mixed.backward()

    assert mixed.dtype == weight.dtype == torch.float32
    assert mixed.item() == pytest.approx(exact.item(), rel=2e-2)
    for grad, exact_grad in zip(
        (p.grad for p in model.parameters()), exact_grads, strict=True
    ):
        assert F.cosine_similarity(grad.flatten(), exact_grad.flatten(), 0) > 0.99


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"id_layers": 2, "modality_scale": 0.3},
        {"id_layers": 2, "similar_items": 2, "similar_items_scale": 4.0},
        {"content_bias": True, "content_factors": 3},
        {"id_layers": 1, "similar_items": 2, "content_bias": True, "num_layers": 2},
    ],
)
def test_representations_are_exactly_the_sum_of_the_explained_parts(options):
    torch.manual_seed(0)
    model = create_model("mgat", tiny_data(), dict(embed_dim=5, **options))
    users, items = model.representations()
    laid, _ = model._laid_parts()
    total = sum(laid.values())
    assert torch.equal(torch.cat([users, items]), total)
