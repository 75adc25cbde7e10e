"""Offline speech for the voice-activity models: espeak-ng sentences → 16 kHz clips → noisy 512-sample windows.

``speech.npz`` (committed, ~0.3 MB) holds the clean clips as int16 at 16 kHz, one key per clip
(``clip0`` …), each sentence between silences so a recording has speech and non-speech parts.
``regenerate()`` rebuilds it with ``espeak-ng`` (``apt-get install -y espeak-ng``); CI never needs it.

``windows()`` mixes a clip with seeded noise (white + low-frequency hum) at a given SNR and cuts it into
ordered windows: one clip at one SNR is one *sequence*, the unit a stateful model is run over closed-loop.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPEECH_NPZ = HERE / "speech.npz"
RATE = 16_000
WINDOW = 512

SENTENCES = (
    "Edge devices listen for speech in noisy rooms.",
    "Please turn the kitchen lights off at nine.",
    "The quick brown fox jumps over the lazy dog.",
    "A firmware update will be installed tonight.",
    "How far is the nearest charging station?",
    "Seven hundred sensors reported their status.",
)
# clips 0-2 calibrate, 3-5 evaluate: no sentence is in both sets
CALIB_CLIPS, EVAL_CLIPS = (0, 1, 2), (3, 4, 5)
CALIB_SNRS_DB, EVAL_SNRS_DB = (None, 10.0), (20.0, 5.0, 0.0)  # None: clean

__all__ = ["RATE", "WINDOW", "Sequence", "clips", "regenerate", "sequences"]


@dataclass(frozen=True)
class Sequence:
    """One clip at one SNR cut into ordered windows ([steps, WINDOW] float32 in [-1, 1])."""

    name: str
    windows: np.ndarray


def regenerate(path: Path = SPEECH_NPZ) -> Path:
    """Synthesize SENTENCES with espeak-ng, resample to 16 kHz, pad with silence, write int16 clips."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: apt-get install -y espeak-ng (only needed to regenerate)")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(SENTENCES):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
            rate, audio = wavfile.read(wav)
            audio16 = resample_poly(audio.astype(np.float32), RATE, rate)
            silence = np.zeros(RATE // 2, np.float32)  # 0.5 s before and after: non-speech windows
            clip = np.concatenate([silence, audio16, silence])
            out[f"clip{i}"] = np.clip(clip, -32768, 32767).astype(np.int16)
    np.savez_compressed(path, **out)
    return path


def clips(path: Path = SPEECH_NPZ) -> list[np.ndarray]:
    """The clean clips as float32 in [-1, 1], in SENTENCES order."""
    with np.load(path) as data:
        return [data[f"clip{i}"].astype(np.float32) / 32768.0 for i in range(len(data.files))]


def _noisy(clip: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    if snr_db is None:
        return clip
    rng = np.random.default_rng(seed)
    t = np.arange(len(clip)) / RATE
    noise = rng.standard_normal(len(clip)).astype(np.float32) + 0.5 * np.sin(2 * np.pi * 50 * t).astype(np.float32)
    speech_power = float(np.mean(clip[np.abs(clip) > 1e-3] ** 2))
    noise *= np.sqrt(speech_power / (10 ** (snr_db / 10)) / float(np.mean(noise**2)))
    return np.clip(clip + noise, -1.0, 1.0).astype(np.float32)


def sequences(split: str, path: Path = SPEECH_NPZ) -> list[Sequence]:
    """The calib or eval sequences: each clip of the split at each of the split's SNRs, cut into windows."""
    ids, snrs = (CALIB_CLIPS, CALIB_SNRS_DB) if split == "calib" else (EVAL_CLIPS, EVAL_SNRS_DB)
    all_clips = clips(path)
    out = []
    for i in ids:
        for snr in snrs:
            audio = _noisy(all_clips[i], snr, seed=1000 * i + int(snr or 99))
            steps = len(audio) // WINDOW
            windows = audio[: steps * WINDOW].reshape(steps, WINDOW)
            out.append(Sequence(f"clip{i}@{'clean' if snr is None else f'{snr:g}dB'}", windows))
    return out


if __name__ == "__main__":
    print(regenerate())
