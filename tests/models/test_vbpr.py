"""VBPR: the score as an inner product, feature scaling, planted preference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgat.errors import ConfigError
from mgat.models import ModelData, create_model
from mgat.models.vbpr import scale_features


def test_the_inner_product_is_the_vbpr_score(tiny_data):
    model = create_model("vbpr", tiny_data, {"embed_dim": 4, "content_dim": 3})
    with torch.no_grad():  # the biases start at zero: give them values to check
        model.item_bias.normal_()
        model.content_bias.normal_()
    users, items = model.embed()

    f = model.features
    expected = (
        model.item_bias[None, :]
        + model.user_factors @ model.item_factors.T
        + model.user_content @ model.projection(f).T
        + (f @ model.content_bias)[None, :]
    )
    torch.testing.assert_close(users @ items.T, expected.detach())


def test_features_concatenate_every_modality_in_order(tiny_data):
    model = create_model("vbpr", tiny_data, {"feature_scaling": "none"})
    expected = np.hstack([tiny_data.features["visual"], tiny_data.features["acoustic"]])

    torch.testing.assert_close(model.features, torch.as_tensor(expected))
    assert model.projection.in_features == expected.shape[1]


def test_standardize_centres_and_scales_columns_and_zeroes_constant_ones():
    features = torch.randn(50, 3) * 4 + 7
    features[:, 2] = 5.0
    scaled = scale_features(features, "standardize")

    torch.testing.assert_close(scaled.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        scaled[:, :2].std(0, unbiased=False), torch.ones(2), atol=1e-5, rtol=0
    )
    assert torch.equal(scaled[:, 2], torch.zeros(50))


def test_l2_scaling_gives_unit_rows_and_none_keeps_the_features():
    features = torch.randn(10, 4) * 3

    norms = scale_features(features, "l2").norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(10))
    assert torch.equal(scale_features(features, "none"), features)


def test_without_item_bias_the_bias_is_content_only(tiny_data):
    model = create_model("vbpr", tiny_data, {"item_bias": False})
    _, items = model.embed()

    assert not hasattr(model, "item_bias")
    expected = model.features @ model.content_bias
    torch.testing.assert_close(items[:, -1], expected.detach())


def test_a_dataset_without_features_is_refused_with_the_fix(tiny_data):
    id_only = ModelData(tiny_data.num_users, tiny_data.num_items, tiny_data.train, {})
    with pytest.raises(ConfigError, match="at least one item modality"):
        create_model("vbpr", id_only)


@pytest.mark.parametrize(
    "values",
    [{"embed_dim": 0}, {"content_dim": 0}, {"init_std": 0.0}],
)
def test_config_rejects_values_out_of_range(tiny_data, values):
    with pytest.raises(ConfigError, match="VBPRConfig"):
        create_model("vbpr", tiny_data, values)


def test_a_short_training_run_finds_the_planted_preference(planted):
    torch.manual_seed(0)
    model = create_model("vbpr", planted.data, {"embed_dim": 8, "content_dim": 8})
    planted.fit(model, steps=80)

    # Random rankings score about 1/3 (warm recall) and 1/2 (cold AUC) here.
    assert planted.warm_recall(model) > 0.75
    assert planted.cold_auc(model) > 0.9
