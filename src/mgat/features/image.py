"""Image features: a weight-free colour and texture descriptor, or a network.

The default descriptor needs no model weights. Per image (converted to RGB):

- ``rgb_histogram`` (48): a 16-bin histogram of each of R, G, B, each summing
  to 1, computed on a copy whose longest side is at most 256 px;
- ``rgb_mean_std`` (6): mean and standard deviation of R, G, B in [0, 1];
- ``glcm`` (10): grey-level co-occurrence statistics of the grey image resized
  to 128 x 128 and quantised to 32 levels: contrast / 31**2, dissimilarity / 31,
  homogeneity, energy and correlation, each averaged over four directions, at
  pixel distances 1 and 4 (so all lie in [0, 1], correlation in [-1, 1]);
- ``lbp_histogram`` (10): the histogram of rotation-invariant uniform local
  binary patterns (8 neighbours, radius 1) of the same grey image.

That is 74 numbers per image; the sidecar lists the blocks in order.

With ``weights``, a network computes the features instead. The file must be
a TorchScript archive (``torch.jit.save``) or a ``torch.export`` program saved
as ``.pt2`` (exported with a dynamic batch dimension). Either maps a
(B, 3, 224, 224) batch, normalised with the ImageNet mean and standard
deviation, to (B, D) features or to (B, C, H, W) maps, which are averaged over
H and W. Export one where torchvision works, e.g. a ResNet-50 without its
classifier::

    model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
    model.fc = torch.nn.Identity()
    torch.jit.script(model.eval()).save("resnet50.pt")

Image paths come from a column of the items table; relative paths are taken
from the table's folder. Unreadable images are reported by row; with
``impute_mean`` they get the mean vector of the readable ones instead.

Shapes: I images (table rows), D feature width.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from mgat.errors import ConfigError
from mgat.features.common import (
    Progress,
    assemble,
    batches,
    checked_output,
    package_versions,
    read_column,
    require,
    resolve_paths,
    source_description,
    with_progress,
    write_features,
)

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 16
HISTOGRAM_SIDE = 256
TEXTURE_SIDE = 128
GREY_LEVELS = 32
GLCM_DISTANCES = (1, 4)
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)
GLCM_PROPERTIES = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")
LBP_POINTS, LBP_RADIUS = 8, 1
DESCRIPTOR_LAYOUT = {
    "rgb_histogram": 3 * HISTOGRAM_BINS,
    "rgb_mean_std": 6,
    "glcm": len(GLCM_PROPERTIES) * len(GLCM_DISTANCES),
    "lbp_histogram": LBP_POINTS + 2,
}

NETWORK_SIDE, NETWORK_RESIZE = 224, 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_BATCH_SIZE = 32
VERSIONED_PACKAGES = ("mgat", "numpy", "pillow", "scikit-image", "torch")


def extract_image(
    items: str | Path,
    column: str,
    out: str | Path,
    weights: str | Path | None = None,
    impute_mean: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    progress: Progress | None = None,
) -> Path:
    """Compute a feature vector per image path of an items table; write ``out``.

    Args:
        items: the items table (CSV, or TSV by suffix); row j becomes row j.
        column: the header of the image-path column.
        out: the ``.npy`` file to write; the sidecar is ``<out>.json``.
        weights: a TorchScript file (see the module docstring), or None for
            the weight-free descriptor.
        impute_mean: give unreadable images the mean vector instead of failing.
        batch_size: images per forward pass (network only).
        device: a torch device string (network only).
        progress: a ``tqdm``-like factory for a progress bar.

    Returns:
        The path of the written ``.npy``.

    Raises:
        DataError: when images cannot be read and ``impute_mean`` is off.
        ConfigError: when ``weights`` is not a usable TorchScript file.
    """
    checked_output(out)  # fail before the slow part, not after
    paths = resolve_paths(read_column(items, column), items)
    if weights is None:
        rows, failures = describe_images(paths, progress)
        description = {
            "extractor": "image-descriptor",
            "model": None,
            "layout": DESCRIPTOR_LAYOUT,
            "parameters": _descriptor_parameters(),
        }
    else:
        network = load_network(weights, device)
        rows, failures = embed_images(paths, network, batch_size, device, progress)
        description = {
            "extractor": "image-network",
            "model": str(Path(weights).resolve()),
            "parameters": {
                "input_side": NETWORK_SIDE,
                "resize_side": NETWORK_RESIZE,
                "mean": IMAGENET_MEAN,
                "std": IMAGENET_STD,
                "batch_size": int(batch_size),
            },
        }

    array, imputed = assemble(rows, failures, impute_mean, "image")
    description["versions"] = package_versions(VERSIONED_PACKAGES)
    description["source"] = source_description(items, column)
    description["imputed_rows"] = imputed
    return write_features(array, out, description)


# ------------------------------------------------------------------ reading
def read_image(path: Path | None):
    """Open ``path`` as an RGB ``PIL.Image``; return the reason on failure."""
    from PIL import Image

    if path is None:
        return None, "the path cell is empty"
    try:
        with Image.open(path) as image:
            return image.convert("RGB"), None
    except FileNotFoundError:
        return None, f"{path}: no such file"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return None, f"{path}: not a readable image ({type(err).__name__}: {err})"


# --------------------------------------------------------------- descriptor
def describe_images(
    paths: list[Path | None], progress: Progress | None = None
) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """The weight-free descriptor of each image; failures by row."""
    require("skimage", "scikit-image")
    rows: list[np.ndarray | None] = []
    failures: dict[int, str] = {}
    for row, path in enumerate(with_progress(paths, progress, "images")):
        image, reason = read_image(path)
        if image is None:
            failures[row] = reason
            rows.append(None)
        else:
            rows.append(image_descriptor(image))
    return rows, failures


def image_descriptor(image) -> np.ndarray:
    """The 74-d colour and texture descriptor of an RGB ``PIL.Image``."""
    from PIL import Image

    small = image.copy()
    small.thumbnail((HISTOGRAM_SIDE, HISTOGRAM_SIDE))
    pixels = np.asarray(small, dtype=np.float64).reshape(-1, 3) / 255.0
    histograms = [
        np.histogram(pixels[:, c], bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0]
        for c in range(3)
    ]
    histogram = np.concatenate([h / max(1, h.sum()) for h in histograms])
    moments = np.concatenate([pixels.mean(axis=0), pixels.std(axis=0)])

    side = (TEXTURE_SIDE, TEXTURE_SIDE)
    grey = np.asarray(image.convert("L").resize(side, Image.Resampling.BILINEAR))
    parts = [histogram, moments, _glcm_statistics(grey), _lbp_histogram(grey)]
    return np.concatenate(parts).astype(np.float32)


def _glcm_statistics(grey: np.ndarray) -> np.ndarray:
    from skimage.feature import graycomatrix, graycoprops

    levels = (grey.astype(np.int64) * GREY_LEVELS // 256).astype(np.uint8)
    matrix = graycomatrix(
        levels,
        distances=list(GLCM_DISTANCES),
        angles=list(GLCM_ANGLES),
        levels=GREY_LEVELS,
        symmetric=True,
        normed=True,
    )
    # Scale contrast and dissimilarity into [0, 1] like the other statistics.
    scale = {"contrast": (GREY_LEVELS - 1) ** 2, "dissimilarity": GREY_LEVELS - 1}
    stats = [
        graycoprops(matrix, name).mean(axis=1) / scale.get(name, 1)
        for name in GLCM_PROPERTIES
    ]
    # A flat image has no grey variance; its correlation is undefined.
    return np.nan_to_num(np.concatenate(stats), nan=0.0)


def _lbp_histogram(grey: np.ndarray) -> np.ndarray:
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(grey, LBP_POINTS, LBP_RADIUS, method="uniform")
    bins = LBP_POINTS + 2
    counts = np.bincount(codes.astype(np.int64).ravel(), minlength=bins)[:bins]
    return counts / max(1, counts.sum())


def _descriptor_parameters() -> dict:
    return {
        "histogram_bins": HISTOGRAM_BINS,
        "histogram_side": HISTOGRAM_SIDE,
        "texture_side": TEXTURE_SIDE,
        "grey_levels": GREY_LEVELS,
        "glcm_distances": list(GLCM_DISTANCES),
        "glcm_angles": list(GLCM_ANGLES),
        "glcm_properties": list(GLCM_PROPERTIES),
        "lbp_points": LBP_POINTS,
        "lbp_radius": LBP_RADIUS,
    }


# ------------------------------------------------------------------ network
def load_network(weights: str | Path, device: str = "cpu"):
    """Load an exported image network for inference.

    ``.pt2`` files are read as ``torch.export`` programs, anything else as
    TorchScript archives.

    Raises:
        ConfigError: when the file is missing, is a bare state dict, or is
            neither kind of archive.
    """
    import torch

    path = Path(weights)
    if not path.is_file():
        raise ConfigError(
            f"--weights {path} does not exist; expected a TorchScript (.pt) or "
            "torch.export (.pt2) file."
        )
    try:
        if path.suffix == ".pt2":
            return torch.export.load(str(path)).module().to(device)
        with warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.export, but it is
            # still the format most published image networks can be saved in.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as err:
        reason = err
    # TODO: a state dict plus an architecture name (e.g. resnet50) would need
    # torchvision to rebuild the network, and torchvision's wheels for this torch
    # build fail to import beside it (their compiled operators do not register),
    # so only self-contained archives are accepted for now.
    if _is_state_dict(path):
        raise ConfigError(
            f"--weights {path} holds a state dict (parameters only), which cannot "
            "be run without the network's code. Export the network where torchvision "
            "works: model = torchvision.models.resnet50(); model.load_state_dict("
            "torch.load(FILE)); model.fc = torch.nn.Identity(); "
            "torch.jit.script(model.eval()).save('resnet50.pt'), then pass that file."
        )
    raise ConfigError(
        f"--weights {path} is not a TorchScript or torch.export archive ({reason}). "
        "Save the network with torch.jit.script(model).save('net.pt') or "
        "torch.export.save(torch.export.export(model, ...), 'net.pt2')."
    )


def _is_state_dict(path: Path) -> bool:
    import pickle

    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, OSError, EOFError, pickle.UnpicklingError):
        return False
    return isinstance(content, dict)


def embed_images(
    paths: list[Path | None],
    network,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    progress: Progress | None = None,
) -> tuple[list[np.ndarray | None], dict[int, str]]:
    """Network features of each image, in batches; failures by row."""
    import torch

    rows: list[np.ndarray | None] = [None] * len(paths)
    failures: dict[int, str] = {}
    for part in with_progress(batches(len(paths), batch_size), progress, "images"):
        indices, tensors = [], []
        for row in range(len(paths))[part]:
            image, reason = read_image(paths[row])
            if image is None:
                failures[row] = reason
            else:
                indices.append(row)
                tensors.append(_network_input(image))
        if not tensors:
            continue
        with torch.inference_mode():
            output = network(torch.stack(tensors).to(device))
        for row, vector in zip(indices, _pooled(output), strict=True):
            rows[row] = vector
    return rows, failures


def _network_input(image):
    """Resize the shorter side, crop the centre square, normalise: (3, S, S)."""
    import torch
    from PIL import Image

    scale = NETWORK_RESIZE / min(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = (image.width - NETWORK_SIDE) // 2
    top = (image.height - NETWORK_SIDE) // 2
    image = image.crop((left, top, left + NETWORK_SIDE, top + NETWORK_SIDE))

    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    mean = torch.tensor(IMAGENET_MEAN)
    std = torch.tensor(IMAGENET_STD)
    return ((pixels - mean) / std).permute(2, 0, 1)


def _pooled(output) -> np.ndarray:
    """(B, D) features from a network output of (B, D) or (B, C, H, W)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 4:
        output = output.mean(dim=(2, 3))
    if output.ndim != 2:
        raise ConfigError(
            f"the network returned shape {tuple(output.shape)}; expected (B, D) "
            "features or (B, C, H, W) maps. Export the network without its head."
        )
    return output.float().cpu().numpy()
