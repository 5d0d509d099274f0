"""Voice / prosody features with librosa: pitch, energy, speaking rate, pauses, and a short description.

- pitch: YIN F0 over the voiced (loud enough) frames; mean, median, spread, range;
- energy: RMS level of the voiced frames in dBFS;
- speaking rate: syllable-like peaks of the smoothed energy envelope per second
  of speech (voiced time);
- pauses: silent stretches of at least ``min_pause`` seconds between the first
  and the last voiced frame.

The description turns these into words, e.g. ``"low pitch, flat, quiet, slow, long pauses"``.
The thresholds are class attributes, so a subclass can adapt them to its users.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mesa.tools.base import Audio, MediaError, ProsodyFeatures, VoiceBackend

__all__ = ["ProsodyVoice", "describe_prosody"]


def describe_prosody(
    f: ProsodyFeatures,
    *,
    low_pitch: float = 140.0,
    high_pitch: float = 230.0,
    flat: float = 0.08,
    varied: float = 0.25,
    quiet: float = -32.0,
    loud: float = -14.0,
    slow: float = 3.6,
    fast: float = 5.8,
    long_pause: float = 1.0,
) -> str:
    words: list[str] = []
    if f.pitch_median_hz is not None:
        if f.pitch_median_hz < low_pitch:
            words.append("low pitch")
        elif f.pitch_median_hz > high_pitch:
            words.append("high pitch")
        else:
            words.append("medium pitch")
        if f.pitch_std_hz is not None and f.pitch_median_hz > 0:
            spread = f.pitch_std_hz / f.pitch_median_hz
            if spread < flat:
                words.append("flat")
            elif spread > varied:
                words.append("lively intonation")
    if f.energy_mean_dbfs < quiet:
        words.append("quiet")
    elif f.energy_mean_dbfs > loud:
        words.append("loud")
    if f.speaking_rate < slow:
        words.append("slow")
    elif f.speaking_rate > fast:
        words.append("fast")
    else:
        words.append("moderate pace")
    if f.pause_longest_s >= long_pause or f.pause_ratio > 0.3:
        words.append("long pauses")
    elif f.pause_count == 0:
        words.append("no pauses")
    else:
        words.append("short pauses")
    return ", ".join(words)


class ProsodyVoice(VoiceBackend):
    """Prosody features with librosa (YIN pitch, RMS energy, envelope peaks, pauses).

    Settings: ``fmin`` (65 Hz), ``fmax`` (500 Hz), ``min_pause`` (0.25 s),
    ``voicing_db`` (a frame is voiced when it is within this many dB of the
    loud frames: 30).
    """

    name = "prosody"
    extra: ClassVar[str] = "audio"
    modules: ClassVar[tuple[str, ...]] = ("librosa", "numpy", "scipy")
    distributions: ClassVar[tuple[str, ...]] = ("librosa",)

    hop: ClassVar[int] = 160  # 10 ms at 16 kHz
    frame: ClassVar[int] = 512

    def __init__(
        self, *, fmin: float = 65.0, fmax: float = 500.0, min_pause: float = 0.25, voicing_db: float = 30.0
    ) -> None:
        super().__init__(fmin=fmin, fmax=fmax, min_pause=min_pause, voicing_db=voicing_db)
        self.version = f"mesa-prosody-1/librosa {self.version}"

    def _load(self) -> Any:
        import librosa
        import numpy as np

        # librosa loads its submodules and compiles its numba kernels at first use (seconds):
        # pay that here, so that warmup() covers it and the first turn does not.
        noise = (np.random.default_rng(0).standard_normal(4000) * 0.1).astype(np.float32)
        librosa.feature.rms(y=noise, frame_length=self.frame, hop_length=self.hop)
        librosa.yin(
            noise,
            fmin=self.settings["fmin"],
            fmax=self.settings["fmax"],
            sr=16000,
            frame_length=2048,
            hop_length=self.hop,
        )
        return librosa

    def analyze(self, audio: Audio) -> ProsodyFeatures:
        import numpy as np
        from scipy.signal import find_peaks

        audio = Audio.coerce(audio)
        audio.check()
        librosa = self.model
        y = audio.samples.astype(np.float32)
        sr = audio.sample_rate
        s = self.settings
        hop, frame = self.hop, self.frame
        frame_s = hop / sr

        rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop, center=True)[0]
        db = 20.0 * np.log10(np.maximum(rms, 1e-10))
        loud = float(np.percentile(db, 95))
        voiced = (db > loud - s["voicing_db"]) & (db > -60.0)
        if not voiced.any():
            raise MediaError("silence: no voiced frames")
        first, last = int(np.argmax(voiced)), int(len(voiced) - 1 - np.argmax(voiced[::-1]))

        # pauses: runs of unvoiced frames between the first and the last voiced frame
        pauses: list[float] = []
        run = 0
        for v in voiced[first : last + 1]:
            if not v:
                run += 1
            else:
                if run * frame_s >= s["min_pause"]:
                    pauses.append(run * frame_s)
                run = 0
        span = (last - first + 1) * frame_s
        voiced_time = float(voiced.sum()) * frame_s

        # pitch over voiced frames
        with self._lock:
            f0 = librosa.yin(y, fmin=s["fmin"], fmax=s["fmax"], sr=sr, frame_length=2048, hop_length=hop, center=True)
        n = min(len(f0), len(voiced))
        candidates = f0[:n][voiced[:n]]
        candidates = candidates[(candidates > s["fmin"] * 1.05) & (candidates < s["fmax"] * 0.95)]
        pitch: dict[str, float | None] = {"mean": None, "median": None, "std": None, "range": None}
        if candidates.size >= 3:
            lo, hi = np.percentile(candidates, [10, 90])
            core = candidates[(candidates >= lo) & (candidates <= hi)]
            core = core if core.size else candidates
            pitch = {
                "mean": float(np.mean(core)),
                "median": float(np.median(candidates)),
                "std": float(np.std(core)),
                "range": float(hi - lo),
            }

        # speaking rate: peaks of the envelope smoothed over 90 ms, at least 80 ms apart, within voiced frames
        window = np.hanning(9)
        envelope = np.convolve(rms, window / window.sum(), mode="same")
        peaks, _ = find_peaks(envelope, distance=max(1, int(0.08 / frame_s)), prominence=float(envelope.max()) * 0.1)
        peaks = [p for p in peaks if voiced[min(p, len(voiced) - 1)]]
        rate = len(peaks) / voiced_time if voiced_time > 0 else 0.0

        features = ProsodyFeatures(
            duration=round(audio.duration, 3),
            pitch_mean_hz=_r(pitch["mean"]),
            pitch_median_hz=_r(pitch["median"]),
            pitch_std_hz=_r(pitch["std"]),
            pitch_range_hz=_r(pitch["range"]),
            energy_mean_dbfs=round(float(20 * np.log10(max(float(np.sqrt(np.mean(rms[voiced] ** 2))), 1e-10))), 2),
            energy_std_db=round(float(np.std(db[voiced])), 2),
            voiced_fraction=round(voiced_time / span, 3) if span else 0.0,
            speaking_rate=round(rate, 2),
            pause_count=len(pauses),
            pause_total_s=round(float(sum(pauses)), 3),
            pause_longest_s=round(float(max(pauses, default=0.0)), 3),
            pause_ratio=round(float(sum(pauses)) / span, 3) if span else 0.0,
        )
        features.description = describe_prosody(features)
        return self._stamp(features)  # type: ignore[return-value]


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
