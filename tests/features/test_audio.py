"""Audio features from sine tones written in the test: shapes, order, bad rows."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
import soundfile

from mgat.errors import DataError
from mgat.features.audio import AUDIO_LAYOUT, SAMPLE_RATE, extract_audio
from mgat.features.common import sidecar_path

WIDTH = sum(AUDIO_LAYOUT.values())
CENTROID = AUDIO_LAYOUT["mfcc"]  # mean spectral centroid, kHz
ZERO_CROSSINGS = CENTROID + 6  # mean zero-crossing rate


def _tone(frequency: float, seconds: float = 1.0) -> np.ndarray:
    time = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return 0.5 * np.sin(2 * np.pi * frequency * time)


def _write_pcm16_stereo(path, signal: np.ndarray) -> None:
    """A 16-bit stereo WAV through the standard library, not soundfile."""
    samples = (np.stack([signal, signal], axis=1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())


@pytest.fixture
def items(tmp_path):
    """High tone first, then a low tone, then a stereo middle tone."""
    folder = tmp_path / "audio"
    folder.mkdir()
    soundfile.write(folder / "high.wav", _tone(3000.0), SAMPLE_RATE)
    soundfile.write(folder / "low.wav", _tone(220.0), SAMPLE_RATE)
    _write_pcm16_stereo(folder / "middle.wav", _tone(1000.0))
    rows = ["a,audio/high.wav", "b,audio/low.wav", "c,audio/middle.wav"]
    (tmp_path / "items.csv").write_text("item,clip\n" + "\n".join(rows) + "\n")
    return tmp_path / "items.csv"


def test_shape_dtype_and_spectral_order(items, tmp_path):
    array = np.load(extract_audio(items, "clip", tmp_path / "out" / "audio.npy"))
    assert array.shape == (3, WIDTH) and array.dtype == np.float32
    assert np.isfinite(array).all()

    high, low, middle = array[:, CENTROID]
    assert low < middle < high
    assert 2.5 < high < 3.5 and low < 0.5
    assert array[0, ZERO_CROSSINGS] > array[1, ZERO_CROSSINGS]


def test_sidecar(items, tmp_path):
    out = extract_audio(items, "clip", tmp_path / "audio.npy", max_seconds=0.5)
    sidecar = json.loads(sidecar_path(out).read_text())
    assert sidecar["extractor"] == "audio-descriptor"
    assert sidecar["layout"] == AUDIO_LAYOUT
    assert sidecar["rows"] == 3 and sidecar["width"] == WIDTH
    assert sidecar["parameters"]["max_seconds"] == 0.5
    assert sidecar["versions"]["librosa"]


def test_unreadable_files_are_reported_by_row_or_imputed(items, tmp_path):
    (items.parent / "audio" / "notes.wav").write_text("not audio")
    with open(items, "a") as table:
        table.write("d,audio/notes.wav\ne,\n")

    with pytest.raises(DataError) as raised:
        extract_audio(items, "clip", tmp_path / "a.npy")
    message = str(raised.value)
    assert "2 of 5 audio files could not be read" in message
    assert "row 3: " in message and "notes.wav: not readable audio" in message
    assert "row 4: the path cell is empty" in message

    array = np.load(extract_audio(items, "clip", tmp_path / "a.npy", impute_mean=True))
    np.testing.assert_allclose(array[3], array[:3].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(array[4], array[3])
