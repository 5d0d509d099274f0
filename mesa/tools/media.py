"""Media handling: fetch (paths and URLs, with a policy and limits), probe, decode audio, sample video frames.

Audio and video are decoded with PyAV (the ``audio`` / ``vision`` extras),
still images with OpenCV. Every problem with the input itself raises
:class:`mesa.tools.MediaError` with a short reason; the perception pipeline
records it as the cue's error and the turn goes on.

Media is hostile until checked, so the checks come before the reading: where
it may come from (:class:`~mesa.tools.policy.MediaPolicy`), that it is a
regular file and its size (a device or a named pipe would never end), its type
from the magic bytes, an image's pixels from its header and a video's frame
size from its container, all before a decoder runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesa.errors import MediaError
from mesa.tools.download import download
from mesa.tools.extras import missing_extra
from mesa.tools.policy import MediaPolicy
from mesa.tools.sniff import image_size, media_kind

__all__ = [
    "IMAGE_SUFFIXES",
    "SAMPLE_RATE",
    "Audio",
    "Images",
    "Limits",
    "MediaInfo",
    "MediaPolicy",
    "fetch",
    "load_audio",
    "load_images",
    "probe",
    "sha256_file",
]

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

SAMPLE_RATE = 16_000

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm"}


# --------------------------------------------------------------------------- inputs


@dataclass
class Audio:
    """Mono float32 samples at ``sample_rate`` (16 kHz when decoded by mesa), and where they came from."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    source: str | None = None

    @property
    def duration(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate) if self.sample_rate else 0.0

    @classmethod
    def coerce(cls, value: Audio | str | Path | Any, *, sample_rate: int = SAMPLE_RATE) -> Audio:
        """An :class:`Audio` from itself, a file path (audio or video: its audio track) or an array."""
        if isinstance(value, Audio):
            return value
        if isinstance(value, (str, Path)):
            return load_audio(value, sample_rate=sample_rate)
        import numpy as np

        samples = np.asarray(value, dtype=np.float32)
        if samples.ndim != 1:
            raise MediaError(f"audio samples must be one-dimensional, got shape {samples.shape}")
        return cls(samples=samples, sample_rate=sample_rate)

    def resampled(self, sample_rate: int) -> Audio:
        """The same audio at another sample rate (linear interpolation)."""
        import numpy as np

        if sample_rate == self.sample_rate or self.samples.size == 0:
            return Audio(samples=self.samples, sample_rate=sample_rate, source=self.source)
        count = max(1, round(self.samples.size * sample_rate / self.sample_rate))
        old = np.arange(self.samples.size, dtype=np.float64) / self.sample_rate
        new = np.arange(count, dtype=np.float64) / sample_rate
        samples = np.interp(new, old, self.samples).astype(np.float32)
        return Audio(samples=samples, sample_rate=sample_rate, source=self.source)

    def check(self, *, min_seconds: float = 0.1, silence_dbfs: float = -55.0) -> None:
        """Raise :class:`MediaError` if the audio is empty, too short or silent."""
        import numpy as np

        if self.samples.size == 0:
            raise MediaError("empty audio: no samples")
        if self.duration < min_seconds:
            raise MediaError(f"audio too short: {self.duration:.2f} s")
        if not np.all(np.isfinite(self.samples)):
            raise MediaError("corrupt audio: non-finite samples")
        peak = float(np.max(np.abs(self.samples)))
        rms = float(np.sqrt(np.mean(np.square(self.samples, dtype=np.float64))))
        if peak <= 1e-6 or 20 * np.log10(max(rms, 1e-12)) < silence_dbfs:
            raise MediaError("silence: no speech or voice in the audio")


@dataclass
class Images:
    """RGB uint8 images (H×W×3): one still, or frames sampled from a video with their times (s)."""

    frames: list[np.ndarray]
    times: list[float] = field(default_factory=list)
    source: str | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def coerce(cls, value: Images | str | Path | Any, **sampling: Any) -> Images:
        """:class:`Images` from itself, an image or video path, one RGB array or a list of them."""
        if isinstance(value, Images):
            return value
        if isinstance(value, (str, Path)):
            return load_images(value, **sampling)
        import numpy as np

        if isinstance(value, np.ndarray) and value.ndim in (2, 3):
            value = [value]
        frames = [np.asarray(frame) for frame in value]
        for frame in frames:
            if frame.ndim not in (2, 3) or frame.size == 0:
                raise MediaError(f"not an image: array of shape {frame.shape}")
        return cls(frames=frames, times=[0.0] * len(frames))


@dataclass(frozen=True)
class Limits:
    """Limits on what one turn's perception will take on. Exceeding one is a cue error, never a crash.

    - ``max_bytes``: largest media file (local or downloaded).
    - ``max_seconds``: longest audio or video.
    - ``download_timeout``: seconds allowed to download a URL: one deadline for the whole transfer,
      redirects included (every read waits at most the time left).
    - ``frame_rate``: frames sampled per second of video for facial expression.
    - ``max_frames``: most frames sampled from one video (spread evenly when the video is longer).
    - ``max_image_pixels``: largest image or frame (width × height), read from the image header or the
      video container before decoding.
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


def sha256_file(path: str | Path, limit: int | None = None, chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file, streamed; :class:`MediaError` for anything else or over ``limit`` bytes.

    The file is checked to be a regular file before it is opened (``/dev/zero`` or a named pipe
    would otherwise be hashed forever), and the opened file must be the one checked.
    """
    limit = Limits().max_bytes if limit is None else limit
    checked = os.stat(path)
    if not stat.S_ISREG(checked.st_mode):
        raise MediaError(f"not a regular file: {Path(path).name}")
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(descriptor, "rb") as handle:
        opened = os.fstat(descriptor)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise MediaError(f"file changed while being checked: {Path(path).name}")
        digest = hashlib.sha256()
        total = 0
        while block := handle.read(chunk):
            total += len(block)
            if total > limit:
                raise MediaError(f"file too large: over the limit of {limit} bytes")
            digest.update(block)
    return digest.hexdigest()


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("decoding audio and video", "audio", ["av"]) from exc
    return av


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("reading images", "vision", ["cv2"]) from exc
    return cv2


def check_file(path: str | Path, limits: Limits | None = None, policy: MediaPolicy | None = None) -> Path:
    """The real path, if ``path`` is a file the policy allows, regular, non-empty and within the size limit;
    else :class:`MediaError` (missing and not allowed give the same message)."""
    real = MediaPolicy.coerce(policy).local_file(path)
    return _check_size(real, limits or Limits())


def _check_size(path: Path, limits: Limits) -> Path:
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"empty file: {path.name}")
    if size > limits.max_bytes:
        raise MediaError(f"file too large: {size} bytes > limit {limits.max_bytes}")
    return path


def fetch(uri: str, directory: str | Path, limits: Limits | None = None, policy: MediaPolicy | None = None) -> Path:
    """A checked local file for ``uri``: a URL is downloaded into ``directory``, a path is checked in place.

    URLs: http(s) only (``file://`` and other schemes are refused), under the policy's network rules.
    Paths: under the policy's local-file rules. Both within the size and time limits.
    """
    limits = limits or Limits()
    policy = MediaPolicy.coerce(policy)
    scheme = urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri or uri.lower().startswith("file:") else ""
    if scheme == "file":
        raise MediaError("file URLs are not allowed: pass a local path (MediaPolicy decides which are allowed)")
    if not scheme:
        return check_file(uri, limits, policy)
    if scheme not in ("http", "https"):
        raise MediaError(f"unsupported URL scheme: {scheme}")
    suffix = Path(urllib.parse.urlsplit(uri).path).suffix[:10]
    suffix = suffix if suffix[1:].isalnum() else ""
    target = Path(directory) / ("download" + suffix)
    return _check_size(download(uri, target, limits, policy), limits)


def _kind(path: Path) -> str:
    """The media kind from the magic bytes (see :func:`mesa.tools.sniff.media_kind`); unknown: :class:`MediaError`."""
    with open(path, "rb") as handle:
        head = handle.read(256)
    kind = media_kind(head)
    if kind is None:
        raise MediaError(f"corrupt or unsupported media: {path.name} (unknown type)")
    return kind


def _check_header_pixels(path: Path, kind: str, limits: Limits) -> None:
    size = image_size(path, kind)
    if size is None:
        raise MediaError(f"corrupt or unsupported image: {path.name}")
    width, height = size
    if width * height > limits.max_image_pixels:
        raise MediaError(f"image too large: {width}x{height} pixels > limit {limits.max_image_pixels}")


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
    if _kind(path).startswith("image/"):
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
    if _kind(path).startswith("image/"):
        raise MediaError(f"no audio track in {path.name} (an image)")
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


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_image_pixels:
        raise MediaError(f"image too large: {width}x{height} pixels > limit {limits.max_image_pixels}")


def _check_frame_size(stream, limits: Limits) -> None:
    """The video's frame size as the container declares it, checked before any frame is decoded."""
    context = stream.codec_context
    width, height = int(context.width or 0), int(context.height or 0)
    _check_pixels(width, height, limits)


def _load_image(path: Path, kind: str, limits: Limits) -> Images:
    import numpy as np

    _check_header_pixels(path, kind, limits)  # before decoding: a small file can declare a huge image
    cv2 = _cv2()
    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"corrupt or unsupported image: {path.name}")
    _check_pixels(image.shape[1], image.shape[0], limits)  # what was decoded, in case the header lied
    return Images(frames=[cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], times=[0.0], source=str(path))


def load_images(
    path: str | Path,
    *,
    limits: Limits | None = None,
    frame_rate: float | None = None,
    max_frames: int | None = None,
) -> Images:
    """An image as one RGB frame, or RGB frames sampled from a video at ``frame_rate`` (at most ``max_frames``)."""

    limits = limits or Limits()
    frame_rate = frame_rate or limits.frame_rate
    max_frames = max_frames or limits.max_frames
    path = check_file(path, limits)
    kind = _kind(path)
    if kind.startswith("image/"):
        return _load_image(path, kind, limits)
    with _open_container(path) as container:
        if not container.streams.video:
            raise MediaError(f"no video track in {path.name}")
        _check_frame_size(container.streams.video[0], limits)
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
                _check_pixels(frame.width, frame.height, limits)  # the size may change mid-stream
                array = frame.to_ndarray(format="rgb24")
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
