"""Image features from PNG files made in the test: descriptor, network, bad rows."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mgat.errors import ConfigError, DataError
from mgat.features.common import sidecar_path
from mgat.features.image import DESCRIPTOR_LAYOUT, extract_image

WIDTH = sum(DESCRIPTOR_LAYOUT.values())
HISTOGRAM_BINS = DESCRIPTOR_LAYOUT["rgb_histogram"] // 3
GLCM_CONTRAST = DESCRIPTOR_LAYOUT["rgb_histogram"] + DESCRIPTOR_LAYOUT["rgb_mean_std"]


def _solid(colour) -> Image.Image:
    return Image.fromarray(np.full((40, 60, 3), colour, dtype=np.uint8))


def _checkerboard() -> Image.Image:
    squares = (np.indices((64, 64)).sum(axis=0) // 4) % 2
    return Image.fromarray((squares * 255).astype(np.uint8), mode="L")


@pytest.fixture
def items(tmp_path):
    """An items table with relative image paths: red, blue, checkerboard, RGBA."""
    folder = tmp_path / "images"
    folder.mkdir()
    _solid((255, 0, 0)).save(folder / "red.png")
    _solid((0, 0, 255)).save(folder / "blue.png")
    _checkerboard().save(folder / "checker.png")
    Image.new("RGBA", (30, 20), (0, 255, 0, 128)).save(folder / "green.png")
    names = ["red", "blue", "checker", "green"]
    rows = [f"i{n},images/{name}.png" for n, name in enumerate(names)]
    (tmp_path / "items.csv").write_text("item,path\n" + "\n".join(rows) + "\n")
    return tmp_path / "items.csv"


def _with_bad_rows(items):
    """The same table plus a text file posing as a PNG and a missing file."""
    (items.parent / "images" / "broken.png").write_text("not an image")
    with open(items, "a") as table:
        table.write("i4,images/broken.png\ni5,images/missing.png\n")
    return items


def test_descriptor_shape_dtype_and_row_order(items, tmp_path):
    array = np.load(extract_image(items, "path", tmp_path / "out" / "image.npy"))
    assert array.shape == (4, WIDTH) and array.dtype == np.float32

    red, blue = array[0], array[1]
    top_bin = HISTOGRAM_BINS - 1
    assert red[top_bin] == 1.0 and red[2 * HISTOGRAM_BINS] == 1.0  # R high, B low
    assert blue[0] == 1.0 and blue[2 * HISTOGRAM_BINS + top_bin] == 1.0
    assert not np.allclose(red, blue)


def test_texture_statistics_tell_a_checkerboard_from_a_flat_image(items, tmp_path):
    array = np.load(extract_image(items, "path", tmp_path / "image.npy"))
    flat, checker = array[0], array[2]
    assert flat[GLCM_CONTRAST] == 0.0
    assert checker[GLCM_CONTRAST] > 0.01
    np.testing.assert_allclose(
        array[:, -DESCRIPTOR_LAYOUT["lbp_histogram"] :].sum(1), 1
    )


def test_sidecar_lists_the_layout(items, tmp_path):
    out = extract_image(items, "path", tmp_path / "image.npy")
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["extractor"] == "image-descriptor"
    assert sidecar["layout"] == DESCRIPTOR_LAYOUT
    assert sidecar["rows"] == 4 and sidecar["width"] == WIDTH
    assert sidecar["imputed_rows"] == []
    assert sidecar["versions"]["scikit-image"]


def test_unreadable_images_are_reported_by_row(items, tmp_path):
    with pytest.raises(DataError) as raised:
        extract_image(_with_bad_rows(items), "path", tmp_path / "image.npy")
    message = str(raised.value)
    assert "2 of 6 images could not be read" in message
    assert "row 4: " in message and "broken.png: not a readable image" in message
    assert "row 5: " in message and "missing.png: no such file" in message
    assert "--impute-mean" in message
    assert not (tmp_path / "image.npy").exists()


def test_impute_mean_fills_the_bad_rows(items, tmp_path):
    out = extract_image(
        _with_bad_rows(items), "path", tmp_path / "i.npy", impute_mean=True
    )
    array = np.load(out)
    mean = array[:4].mean(axis=0)
    np.testing.assert_allclose(array[4], mean, rtol=1e-6)
    np.testing.assert_allclose(array[5], mean, rtol=1e-6)
    assert json.loads(sidecar_path(out).read_text())["imputed_rows"] == [4, 5]


def test_nothing_to_impute_from_is_an_error(tmp_path):
    (tmp_path / "items.csv").write_text("item,path\na,nowhere.png\n")
    with pytest.raises(DataError, match="none of the 1 images could be read"):
        extract_image(
            tmp_path / "items.csv", "path", tmp_path / "i.npy", impute_mean=True
        )


class _TinyNetwork(torch.nn.Module):
    """Colour means of four patches: (B, 3, 224, 224) -> (B, 3, 2, 2) maps."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images, 112)


def _save_torchscript(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_TinyNetwork()).save(str(path))


def _save_exported(path):
    batch = torch.export.Dim("batch", min=1)
    example = (torch.rand(2, 3, 224, 224),)
    program = torch.export.export(_TinyNetwork(), example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


@pytest.mark.parametrize(
    "filename, save", [("net.pt", _save_torchscript), ("net.pt2", _save_exported)]
)
def test_a_network_file_gives_pooled_features(items, tmp_path, filename, save):
    save(tmp_path / filename)
    out = extract_image(
        items, "path", tmp_path / "n.npy", weights=tmp_path / filename, batch_size=3
    )
    array = np.load(out)
    assert array.shape == (4, 3) and array.dtype == np.float32
    red, blue = array[0], array[1]
    assert red[0] > red[2] and blue[2] > blue[0]  # normalised R vs B channel
    assert json.loads(sidecar_path(out).read_text())["extractor"] == "image-network"


def test_a_state_dict_is_refused_with_the_export_recipe(items, tmp_path):
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "weights.pth")
    with pytest.raises(ConfigError, match="holds a state dict.*torch.jit.script"):
        extract_image(
            items, "path", tmp_path / "n.npy", weights=tmp_path / "weights.pth"
        )
