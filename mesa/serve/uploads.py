"""Uploaded media for one turn: size-capped, stored private, handed to the agent as a local path, then deleted.

The request body is read with a byte budget before any multipart parsing, so an
oversized upload is refused (413) without being written anywhere.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from mesa.errors import MesaError

__all__ = ["TurnFiles", "UnsupportedUpload", "UploadTooLarge", "read_limited_body", "replay"]

MEDIA_FIELDS = ("audio", "video", "image")
# What each field accepts, by the MIME type's major part; the browser's MediaRecorder sends audio/webm.
_ACCEPTED_MAJOR = {"audio": ("audio",), "video": ("video",), "image": ("image",)}
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class UploadTooLarge(MesaError):
    """The request body is larger than the server's upload cap."""


class UnsupportedUpload(MesaError):
    """An uploaded file is not of the kind its field expects (audio, video or image)."""


async def read_limited_body(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or :class:`UploadTooLarge` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise UploadTooLarge(f"upload larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` that hands out an already-read body (so Starlette can parse it as a form)."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def check_kind(field: str, content_type: str | None) -> None:
    """Refuse a file whose declared type does not match its field (an image sent as ``audio``)."""
    major = (content_type or "").split("/", 1)[0].lower()
    if major not in _ACCEPTED_MAJOR[field]:
        raise UnsupportedUpload(f"the {field} field expects {field}/* content, got {content_type or 'no type'}")


class TurnFiles:
    """A private folder (0700) for one turn's uploads (0600); removed, files and all, on exit."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = root
        self.folder: Path | None = None

    def __enter__(self) -> Self:
        self.folder = Path(tempfile.mkdtemp(prefix="mesa-upload-", dir=self.root))  # mkdtemp makes it 0700
        return self

    async def save(self, field: str, upload: Any) -> Path:
        """Copy one Starlette ``UploadFile`` into the folder; returns its path."""
        assert self.folder is not None, "use TurnFiles as a context manager"
        check_kind(field, getattr(upload, "content_type", None))
        suffix = Path(upload.filename or "").suffix
        path = self.folder / (field + (suffix if _SAFE_SUFFIX.match(suffix) else ""))
        # O_EXCL + 0600: the file is created private, never opened through a link someone planted.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            await upload.seek(0)
            while block := await upload.read(1 << 20):
                out.write(block)
        return path

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
