"""Media handling: fetch (paths and URLs, with limits), probe, decode audio, sample video frames.

Audio and video are decoded with PyAV (the ``audio`` / ``vision`` extras),
still images with OpenCV. Every problem with the input itself raises
:class:`mesa.tools.MediaError` with a short reason; the perception pipeline
records it as the cue's error and the turn goes on.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesa.tools.base import SAMPLE_RATE, Audio, Images, MediaError, MissingExtraError

__all__ = ["IMAGE_SUFFIXES", "Limits", "MediaInfo", "fetch", "load_audio", "load_images", "probe", "sha256_file"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}


@dataclass(frozen=True)
class Limits:
    """Limits on what one turn's perception will take on. Exceeding one is a cue error, never a crash.

    - ``max_bytes``: largest media file (local or downloaded).
    - ``max_seconds``: longest audio or video.
    - ``download_timeout``: seconds allowed to download a URL (whole transfer).
    - ``frame_rate``: frames sampled per second of video for facial expression.
    - ``max_frames``: most frames sampled from one video (spread evenly when the video is longer).
    - ``max_image_pixels``: largest image or frame (width × height).
    - ``max_text_chars``: text given to a text-emotion backend is cut to this length.
    - ``timeout``: seconds one backend may take on one cue (``None``: no limit).
    """

    max_bytes: int = 200 * 1024 * 1024
    max_seconds: float = 600.0
    download_timeout: float = 30.0
    frame_rate: float = 1.0
    max_frames: int = 16
    max_image_pixels: int = 50_000_000
    max_text_chars: int = 4000
    timeout: float | None = 300.0

    def sampling(self) -> dict[str, Any]:
        return {"frame_rate": self.frame_rate, "max_frames": self.max_frames}


@dataclass(frozen=True)
class MediaInfo:
    duration: float | None
    has_audio: bool
    has_video: bool
    is_image: bool


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError("decoding audio and video", "audio", ["av"]) from exc
    return av


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingExtraError("reading images", "vision", ["cv2"]) from exc
    return cv2


def check_file(path: str | Path, limits: Limits | None = None) -> Path:
    """The path, if it names a readable, non-empty file within the size limit; else :class:`MediaError`."""
    limits = limits or Limits()
    path = Path(path)
    if not path.exists():
        raise MediaError(f"missing file: {path}")
    if not path.is_file():
        raise MediaError(f"not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"empty file: {path.name}")
    if size > limits.max_bytes:
        raise MediaError(f"file too large: {size} bytes > limit {limits.max_bytes}")
    return path


def fetch(uri: str, directory: str | Path, limits: Limits | None = None) -> Path:
    """Download ``uri`` into ``directory`` within the size and time limits; local paths pass through."""
    limits = limits or Limits()
    if uri.startswith("file://"):
        return check_file(urllib.parse.urlparse(uri).path, limits)
    if "://" not in uri:
        return check_file(uri, limits)
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise MediaError(f"unsupported URL scheme: {scheme}")
    suffix = Path(urllib.parse.urlparse(uri).path).suffix[:10]
    target = Path(directory) / ("download" + suffix)
    started = time.monotonic()
    try:
        request = urllib.request.Request(uri, headers={"User-Agent": "mesa-esc"})
        with urllib.request.urlopen(request, timeout=limits.download_timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise MediaError(f"download too large: {declared} bytes > limit {limits.max_bytes}")
            total = 0
            with target.open("wb") as out:
                while block := response.read(1 << 16):
                    total += len(block)
                    if total > limits.max_bytes:
                        raise MediaError(f"download too large: over the limit of {limits.max_bytes} bytes")
                    if time.monotonic() - started > limits.download_timeout:
                        raise MediaError(f"download too slow: over {limits.download_timeout:g} s")
                    out.write(block)
    except MediaError:
        target.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise MediaError(f"download failed: {exc}") from exc
    return check_file(target, limits)


# FFmpeg demuxers that accept anything (plain text is rendered as a "video"): not media for us.
_NOT_MEDIA_FORMATS = {"tty", "ansi", "srt", "ass", "webvtt", "subviewer", "microdvd", "jacosub"}


def _open_container(path: Path):
    av = _av()
    try:
        container = av.open(str(path))
    except FileNotFoundError as exc:
        raise MediaError(f"missing file: {path}") from exc
    except Exception as exc:  # av raises several FFmpegError subclasses
        raise MediaError(f"corrupt or unsupported media: {path.name} ({type(exc).__name__})") from exc
    names = set((container.format.name or "").split(","))
    if names & _NOT_MEDIA_FORMATS:
        container.close()
        raise MediaError(f"corrupt or unsupported media: {path.name} (not audio or video)")
    return container


def _duration(container) -> float | None:
    if container.duration is not None:
        return float(container.duration) / 1_000_000.0
    durations = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration is not None and stream.time_base is not None
    ]
    return max(durations) if durations else None


def probe(path: str | Path, limits: Limits | None = None) -> MediaInfo:
    """Duration and streams of a media file."""
    path = check_file(path, limits)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return MediaInfo(duration=None, has_audio=False, has_video=False, is_image=True)
    with _open_container(path) as container:
        return MediaInfo(
            duration=_duration(container),
            has_audio=bool(container.streams.audio),
            has_video=bool(container.streams.video),
            is_image=False,
        )


def load_audio(path: str | Path, *, sample_rate: int = SAMPLE_RATE, limits: Limits | None = None) -> Audio:
    """Decode the (first) audio track of an audio or video file to mono float32 at ``sample_rate``."""
    import numpy as np

    limits = limits or Limits()
    path = check_file(path, limits)
    av = _av()
    with _open_container(path) as container:
        if not container.streams.audio:
            raise MediaError(f"no audio track in {path.name}")
        duration = _duration(container)
        if duration is not None and duration > limits.max_seconds:
            raise MediaError(f"media too long: {duration:.1f} s > limit {limits.max_seconds:g} s")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        max_samples = int(limits.max_seconds * sample_rate)
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1)
                    chunks.append(block)
                    total += block.size
                if total > max_samples:
                    raise MediaError(f"media too long: over the limit of {limits.max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except MediaError:
            raise
        except Exception as exc:
            if not chunks:
                raise MediaError(f"corrupt audio: {path.name} ({type(exc).__name__})") from exc
            # A truncated file: keep what decoded.
    if not chunks:
        raise MediaError(f"empty audio: nothing decodable in {path.name}")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return Audio(samples=samples, sample_rate=sample_rate, source=str(path))


def _check_pixels(frame, limits: Limits) -> None:
    height, width = frame.shape[:2]
    if height * width > limits.max_image_pixels:
        raise MediaError(f"image too large: {width}x{height} pixels > limit {limits.max_image_pixels}")


def load_images(
    path: str | Path,
    *,
    limits: Limits | None = None,
    frame_rate: float | None = None,
    max_frames: int | None = None,
) -> Images:
    """An image as one RGB frame, or RGB frames sampled from a video at ``frame_rate`` (at most ``max_frames``)."""
    import numpy as np

    limits = limits or Limits()
    frame_rate = frame_rate or limits.frame_rate
    max_frames = max_frames or limits.max_frames
    path = check_file(path, limits)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        cv2 = _cv2()
        data = np.fromfile(str(path), dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise MediaError(f"corrupt or unsupported image: {path.name}")
        _check_pixels(image, limits)
        return Images(frames=[cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], times=[0.0], source=str(path))
    with _open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"no video track in {path.name}")
        duration = _duration(container)
        if duration is not None and duration > limits.max_seconds:
            raise MediaError(f"media too long: {duration:.1f} s > limit {limits.max_seconds:g} s")
        step = 1.0 / frame_rate
        if duration:
            step = max(step, duration / max_frames)
        frames: list[np.ndarray] = []
        times: list[float] = []
        next_time = 0.0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(video=0):
                t = float(frame.time) if frame.time is not None else len(times) * step
                if t > limits.max_seconds:
                    raise MediaError(f"media too long: over the limit of {limits.max_seconds:g} s")
                if t + 1e-6 < next_time:
                    continue
                array = frame.to_ndarray(format="rgb24")
                _check_pixels(array, limits)
                frames.append(array)
                times.append(t)
                next_time = t + step
                if len(frames) >= max_frames:
                    break
        except MediaError:
            raise
        except Exception as exc:
            if not frames:
                raise MediaError(f"corrupt video: {path.name} ({type(exc).__name__})") from exc
    if not frames:
        raise MediaError(f"no decodable frames in {path.name}")
    return Images(frames=frames, times=times, source=str(path))


class TempDir:
    """A temporary directory removed on exit (downloads of one turn)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="mesa-media-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
