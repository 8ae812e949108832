"""Audio features: weight-free MFCC and spectral statistics with librosa.

Each file is decoded to mono at 22,050 Hz (at most ``max_seconds`` from its
start) and described by the mean and the standard deviation over frames of:

- ``mfcc`` (20 + 20): Mel-frequency cepstral coefficients 1-20;
- ``spectral_centroid``, ``spectral_bandwidth`` (2 + 2), in kHz;
- ``spectral_rolloff`` (2): the frequency below which 85% of the energy lies,
  in kHz;
- ``zero_crossing_rate`` (2) and ``rms`` (2): per-frame sign changes and
  root-mean-square amplitude.

That is 50 numbers per file, in the order above (all means, then all
standard deviations, per block); frames are 2,048 samples with a hop of 512.
Audio paths come from a column of the items table; relative paths are taken
from the table's folder. Unreadable or empty files are reported by row; with
``impute_mean`` they get the mean vector of the readable ones instead.

Shapes: I files (table rows), T frames.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from mgat.features.common import (
    Progress,
    assemble,
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

SAMPLE_RATE = 22_050
NUM_MFCC = 20
FRAME_LENGTH, HOP_LENGTH = 2048, 512
ROLLOFF_PERCENT = 0.85
DEFAULT_MAX_SECONDS = 60.0
AUDIO_LAYOUT = {
    "mfcc": 2 * NUM_MFCC,
    "spectral_centroid": 2,
    "spectral_bandwidth": 2,
    "spectral_rolloff": 2,
    "zero_crossing_rate": 2,
    "rms": 2,
}
VERSIONED_PACKAGES = ("mgat", "numpy", "librosa", "soundfile")


def extract_audio(
    items: str | Path,
    column: str,
    out: str | Path,
    impute_mean: bool = False,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress: Progress | None = None,
) -> Path:
    """Compute the 50-d descriptor per audio path of an items table; write ``out``.

    Args:
        items: the items table (CSV, or TSV by suffix); row j becomes row j.
        column: the header of the audio-path column.
        out: the ``.npy`` file to write; the sidecar is ``<out>.json``.
        impute_mean: give unreadable files the mean vector instead of failing.
        max_seconds: decode at most this much of each file (None: all of it).
        progress: a ``tqdm``-like factory for a progress bar.

    Returns:
        The path of the written ``.npy``.

    Raises:
        DataError: when files cannot be read and ``impute_mean`` is off.
    """
    checked_output(out)  # fail before the slow part, not after
    require("librosa", "librosa")
    paths = resolve_paths(read_column(items, column), items)
    rows: list[np.ndarray | None] = []
    failures: dict[int, str] = {}
    for row, path in enumerate(with_progress(paths, progress, "audio")):
        signal, reason = read_audio(path, max_seconds)
        if signal is None:
            failures[row] = reason
            rows.append(None)
        else:
            rows.append(audio_descriptor(signal))

    array, imputed = assemble(rows, failures, impute_mean, "audio file")
    description = {
        "extractor": "audio-descriptor",
        "model": None,
        "layout": AUDIO_LAYOUT,
        "parameters": {
            "sample_rate": SAMPLE_RATE,
            "num_mfcc": NUM_MFCC,
            "frame_length": FRAME_LENGTH,
            "hop_length": HOP_LENGTH,
            "rolloff_percent": ROLLOFF_PERCENT,
            "max_seconds": max_seconds,
            "frequency_unit": "kHz",
        },
        "versions": package_versions(VERSIONED_PACKAGES),
        "source": source_description(items, column),
        "imputed_rows": imputed,
    }
    return write_features(array, out, description)


def read_audio(path: Path | None, max_seconds: float | None = DEFAULT_MAX_SECONDS):
    """Decode ``path`` to a mono float32 signal; return the reason on failure."""
    import librosa
    from audioread.exceptions import DecodeError

    # Decoders fail in their own ways: soundfile, audioread and short files.
    failures = (OSError, RuntimeError, ValueError, EOFError, DecodeError)
    if path is None:
        return None, "the path cell is empty"
    if not path.is_file():
        return None, f"{path}: no such file"
    try:
        with warnings.catch_warnings():
            # librosa warns when it falls back from soundfile to audioread.
            warnings.simplefilter("ignore")
            signal, _ = librosa.load(
                path, sr=SAMPLE_RATE, mono=True, duration=max_seconds
            )
    except failures as err:
        return None, f"{path}: not readable audio ({_decoder_error(path, err)})"
    if signal.size == 0:
        return None, f"{path}: the file holds no samples"
    if not np.isfinite(signal).all():
        return None, f"{path}: the decoded samples contain NaN or infinity"
    return signal, None


def _decoder_error(path: Path, err: Exception) -> str:
    """The soundfile decoder's complaint, which says more than audioread's."""
    import soundfile

    try:
        soundfile.info(str(path))
    except (RuntimeError, OSError) as decoder_err:
        return str(decoder_err)
    return f"{type(err).__name__}: {err}"


def audio_descriptor(signal: np.ndarray) -> np.ndarray:
    """The 50-d descriptor of a mono signal sampled at ``SAMPLE_RATE``."""
    import librosa

    # One magnitude spectrogram serves every spectral statistic.
    stft = librosa.stft(signal, n_fft=FRAME_LENGTH, hop_length=HOP_LENGTH)
    spectrum = np.abs(stft)  # (1 + FRAME_LENGTH / 2, T)
    mel_db = librosa.power_to_db(
        librosa.feature.melspectrogram(S=spectrum**2, sr=SAMPLE_RATE)
    )
    spectral = {"S": spectrum, "sr": SAMPLE_RATE}
    frames = [  # (rows, T) each, in AUDIO_LAYOUT order; frequencies in kHz
        librosa.feature.mfcc(S=mel_db, n_mfcc=NUM_MFCC),
        librosa.feature.spectral_centroid(**spectral) / 1000.0,
        librosa.feature.spectral_bandwidth(**spectral) / 1000.0,
        librosa.feature.spectral_rolloff(**spectral, roll_percent=ROLLOFF_PERCENT)
        / 1000.0,
        librosa.feature.zero_crossing_rate(
            signal, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH
        ),
        librosa.feature.rms(S=spectrum, frame_length=FRAME_LENGTH),
    ]
    parts = [
        np.concatenate([values.mean(axis=1), values.std(axis=1)]) for values in frames
    ]
    # Silence has an undefined centroid and bandwidth; call them zero.
    return np.nan_to_num(np.concatenate(parts), nan=0.0).astype(np.float32)
