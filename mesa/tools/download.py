"""Download a media URL under a :class:`~mesa.tools.policy.MediaPolicy` and :class:`~mesa.tools.media.Limits`.

- The host is resolved and checked once, and the connection goes to that checked address (the
  ``Host`` header and TLS SNI/certificate check still use the name), so DNS cannot change the
  answer between the check and the connection (no DNS rebinding).
- Redirects are followed by hand, each one checked again like the first URL, at most
  ``policy.max_redirects`` of them.
- The whole transfer has one wall-clock deadline (``limits.download_timeout``): every socket
  read waits at most the time left, reads are small, and a watchdog closes the socket at the
  deadline, so a server that drips one byte at a time cannot stretch it.
- The body is streamed to a private file (0600) and cut at ``limits.max_bytes``.

Proxies from the environment are not used: a proxy would make the connection to an unchecked address.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mesa.errors import MediaError

if TYPE_CHECKING:  # pragma: no cover
    from mesa.tools.policy import MediaPolicy


class DownloadLimits(Protocol):
    """The two :class:`mesa.tools.media.Limits` fields a download uses (named here so this module
    does not import mesa.tools.media, which imports it)."""

    max_bytes: int
    download_timeout: float

__all__ = ["download"]

_REDIRECTS = {301, 302, 303, 307, 308}
_READ_SIZE = 16 * 1024


class _Watchdog:
    """Closes a connection's socket at the deadline (wakes a read blocked in the middle of a header)."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._connection = connection
        self.sock: socket.socket | None = None  # set once connected: http.client may forget its socket later
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self.sock or self._connection.sock  # during connect (and the TLS handshake) it is the latter
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _pinned_connection(parts: urllib.parse.SplitResult, address: str, timeout: float) -> http.client.HTTPConnection:
    """An HTTP(S) connection to ``parts.hostname`` that connects to the checked ``address`` only."""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    if parts.scheme.lower() == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)

    def connect_to_checked_address(_address, timeout, source_address=None):
        return socket.create_connection((address, port), timeout, source_address)

    connection._create_connection = connect_to_checked_address  # type: ignore[attr-defined]
    return connection


def _remaining(deadline: float, limits: DownloadLimits) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise MediaError(f"download too slow: over {limits.download_timeout:g} s")
    return left


def download(url: str, target: Path, limits: DownloadLimits, policy: MediaPolicy) -> Path:
    """Download ``url`` to ``target`` (created 0600) within the policy and limits; :class:`MediaError` if not."""
    deadline = time.monotonic() + limits.download_timeout
    try:
        for _hop in range(policy.max_redirects + 1):
            location = _one_request(url, target, limits, policy, deadline)
            if location is None:
                return target
            url = urllib.parse.urljoin(url, location)
        raise MediaError(f"download failed: more than {policy.max_redirects} redirects")
    except MediaError:
        target.unlink(missing_ok=True)
        raise
    except TimeoutError as exc:
        target.unlink(missing_ok=True)
        raise MediaError(f"download too slow: over {limits.download_timeout:g} s") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise MediaError(f"download failed: {type(exc).__name__}: {exc}") from exc


def _one_request(url: str, target: Path, limits: DownloadLimits, policy: MediaPolicy, deadline: float) -> str | None:
    """Fetch one URL into ``target``; the redirect location if it answered with one, else ``None``."""
    parts, address = policy.resolve_url(url, timeout=_remaining(deadline, limits))
    connection = _pinned_connection(parts, address, _remaining(deadline, limits))
    watchdog = _Watchdog(connection, _remaining(deadline, limits))
    try:
        connection.connect()
        # Kept here: http.client forgets the socket (connection.sock = None) when the server will close it.
        sock = watchdog.sock = connection.sock
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("GET", path, headers={"User-Agent": "mesa-esc", "Accept-Encoding": "identity"})
        response = connection.getresponse()
        if response.status in _REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise MediaError(f"download failed: HTTP {response.status} without a Location")
            return location
        if response.status != 200:
            raise MediaError(f"download failed: HTTP Error {response.status}: {response.reason}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise MediaError(f"download too large: {declared} bytes > limit {limits.max_bytes}")
        _stream(response, sock, target, limits, deadline)
        if watchdog.fired:
            raise MediaError(f"download too slow: over {limits.download_timeout:g} s")
        if response.length:  # bytes the server announced and never sent
            raise MediaError("download failed: the connection closed before the end of the file")
        return None
    except OSError:
        if watchdog.fired:
            raise MediaError(f"download too slow: over {limits.download_timeout:g} s") from None
        raise
    finally:
        watchdog.cancel()
        connection.close()


def _stream(response, sock: socket.socket, target: Path, limits: DownloadLimits, deadline: float) -> None:
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    total = 0
    with os.fdopen(descriptor, "wb") as out:
        while True:
            sock.settimeout(_remaining(deadline, limits))
            block = response.read1(_READ_SIZE)  # one socket read at most: the deadline is checked between
            if not block:
                return
            total += len(block)
            if total > limits.max_bytes:
                raise MediaError(f"download too large: over the limit of {limits.max_bytes} bytes")
            out.write(block)
