"""BPR-MF: embeddings as representations, configuration, planted preference."""

from __future__ import annotations

import pytest
import torch

from mgat.errors import ConfigError
from mgat.models import BPRMF, create_model


def test_representations_are_the_free_embeddings(tiny_data):
    model = create_model("bprmf", tiny_data, {"embed_dim": 4})
    users, items = model.representations()

    assert users is model.user_embedding and items is model.item_embedding
    assert users.shape == (tiny_data.num_users, 4)
    assert items.shape == (tiny_data.num_items, 4)


def test_embed_returns_tensors_detached_from_autograd(tiny_data):
    model = create_model("bprmf", tiny_data, {"embed_dim": 4})
    users, items = model.embed()

    assert not users.requires_grad and not items.requires_grad
    torch.testing.assert_close(users, model.user_embedding.detach())


def test_regularized_terms_are_the_batch_embeddings(tiny_data):
    model = create_model("bprmf", tiny_data, {"embed_dim": 4})
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    (user_table, user_rows), (item_table, item_rows) = model.regularized(
        users, pos, neg
    )

    assert user_table is model.user_embedding and item_table is model.item_embedding
    assert torch.equal(user_rows, users)
    assert torch.equal(item_rows, torch.cat([pos, neg]))


@pytest.mark.parametrize("values", [{"embed_dim": 0}, {"init_std": 0.0}])
def test_config_rejects_values_out_of_range(tiny_data, values):
    with pytest.raises(ConfigError, match="BPRMFConfig"):
        create_model("bprmf", tiny_data, values)


def test_a_short_training_run_finds_the_planted_preference(planted):
    torch.manual_seed(0)
    model = create_model("bprmf", planted.data, {"embed_dim": 16})
    assert isinstance(model, BPRMF)
    planted.fit(model, steps=80)

    # A random ranking scores about 1/3 here.
    assert planted.warm_recall(model) > 0.75
