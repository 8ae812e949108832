"""Item features from raw content: text, images and audio.

Each extractor reads one column of an items table and writes an (I, D)
float32 ``.npy`` in the table's row order, with a ``<out>.json`` sidecar that
records the extractor, model, parameters and package versions. The arrays
plug into ``mgat data import --feature NAME=PATH.npy`` as modalities.

The heavy dependencies (sentence-transformers, scikit-image, librosa) are
optional: ``pip install 'mgat[features]'``. They are imported only when an
extractor runs.
"""

from mgat.features.audio import extract_audio
from mgat.features.common import sidecar_path
from mgat.features.image import extract_image
from mgat.features.text import encode_texts, extract_text, load_text_model

__all__ = [
    "encode_texts",
    "extract_audio",
    "extract_image",
    "extract_text",
    "load_text_model",
    "sidecar_path",
]
