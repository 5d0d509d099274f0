"""Where media may come from: :class:`MediaPolicy` (URLs, network ranges, redirects, local folders).

Media references come from users, so they are hostile until checked. A URL is
fetched only over http(s), only from hosts that resolve to public addresses
(unless the host allows private networks or names the host), and the
connection goes to the very address that was checked. A local path is opened
only if the host allows local files there; a path that is missing and a path
that is not allowed give the same error, so the error never tells whether a
file exists outside the allowed area.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesa.errors import MediaError

__all__ = ["MediaPolicy", "is_public_address"]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class MediaPolicy:
    """Where a turn's media may come from. Refusals are cue errors (:class:`~mesa.errors.MediaError`).

    - ``allow_local_files``: local paths may be read (default ``True``: a library user passing a path
      they chose is the host). A server that takes media references from clients sets ``False`` or
      ``allowed_dirs``.
    - ``allowed_dirs``: when given, local files only inside these folders (after resolving ``..`` and
      symlinks; a symlink pointing out of them is refused). ``None``: anywhere the process can read.
    - ``allow_private_networks``: fetch URLs whose host resolves to private, loopback, link-local,
      multicast, reserved or unspecified addresses (default ``False``: such URLs are refused).
    - ``allowed_hosts``: host names or IP literals (``"host"`` or ``"host:port"``) let through even
      when they resolve to such addresses, e.g. an internal media server. Redirects are checked again.
    - ``max_redirects``: redirects followed per download (each one re-checked); ``0`` refuses redirects.
    """

    allow_local_files: bool = True
    allowed_dirs: tuple[Path, ...] | None = None
    allow_private_networks: bool = False
    allowed_hosts: tuple[str, ...] = field(default=())
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.allowed_dirs is not None:
            dirs = (self.allowed_dirs,) if isinstance(self.allowed_dirs, (str, Path)) else self.allowed_dirs
            object.__setattr__(self, "allowed_dirs", tuple(Path(d).expanduser() for d in dirs))
        hosts = (self.allowed_hosts,) if isinstance(self.allowed_hosts, str) else self.allowed_hosts
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in hosts))

    @classmethod
    def coerce(cls, value: MediaPolicy | Mapping[str, Any] | None) -> MediaPolicy:
        """A policy from itself, a dict of its fields, or ``None`` (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(**dict(value))
        return value

    # -- local files
    def local_file(self, given: str | Path) -> Path:
        """The real path of an allowed, readable regular file; else :class:`MediaError`.

        Missing, unreadable and not allowed all give one message, so it reveals nothing about files
        outside the allowed area. Nothing is read, and only a regular file is opened: opening a
        device can act (a tape rewinds, a watchdog arms) and a named pipe waits for a writer. The
        opened file must be the one that was checked (no swap in between).
        """
        refused = MediaError(f"missing or not allowed file: {given}")
        if not self.allow_local_files:
            raise refused
        real = Path(os.path.realpath(Path(given).expanduser()))
        if not self._inside_allowed_dirs(real):
            raise refused
        try:
            checked = os.stat(real)
        except OSError:
            raise refused from None
        if not stat.S_ISREG(checked.st_mode):
            raise MediaError(f"not a regular file: {given}")
        try:
            descriptor = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            raise refused from None
        try:
            opened = os.fstat(descriptor)
        finally:
            os.close(descriptor)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise refused  # replaced between the check and the open
        return real

    def _inside_allowed_dirs(self, real: Path) -> bool:
        if self.allowed_dirs is None:
            return True
        return any(real.is_relative_to(os.path.realpath(folder)) for folder in self.allowed_dirs)

    # -- URLs
    def resolve_url(self, url: str, timeout: float | None = None) -> tuple[urllib.parse.SplitResult, str]:
        """The parsed URL and the checked address to connect to; :class:`MediaError` when not allowed.

        ``timeout``: seconds the DNS lookup may take (``None``: the system's own limits)."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise MediaError(f"unsupported URL scheme: {scheme or 'none'} (only http and https)")
        host = (parts.hostname or "").lower()
        if not host:
            raise MediaError("URL not allowed: no host")
        port = parts.port or (443 if scheme == "https" else 80)
        addresses = _resolve(host, port, timeout)
        if not (self.allow_private_networks or self._host_allowed(host, port)):
            refused = [a for a in addresses if not is_public_address(a)]
            if refused:
                raise MediaError(
                    f"URL not allowed: {host} resolves to a private, local or reserved address "
                    "(MediaPolicy(allow_private_networks=True) or allowed_hosts lets it through)"
                )
        return parts, addresses[0]

    def _host_allowed(self, host: str, port: int) -> bool:
        bare = host.strip("[]")
        return any(entry in (bare, f"{bare}:{port}", f"[{bare}]:{port}") for entry in self.allowed_hosts)


def _resolve(host: str, port: int, timeout: float | None = None) -> list[str]:
    """The addresses ``host`` resolves to. getaddrinfo has no timeout of its own, so a slow DNS server
    is waited for in a helper thread, at most ``timeout`` seconds."""
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    worker = threading.Thread(target=lookup, daemon=True, name="mesa-dns")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise MediaError(f"download too slow: resolving {host} took over {timeout:g} s")
    if "error" in box:
        raise MediaError(f"download failed: cannot resolve {host}") from box["error"]
    infos = box["infos"]
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise MediaError(f"download failed: cannot resolve {host}")
    return addresses


def is_public_address(address: str) -> bool:
    """Whether an IP address is globally routable: not private, loopback, link-local, multicast,
    reserved or unspecified, also when an IPv4 address hides inside IPv6 (mapped, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return all(_is_public(candidate) for candidate in _embedded(ip))


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Iterable[Any]:
    yield ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            yield ip.ipv4_mapped
        if ip.sixtofour is not None:
            yield ip.sixtofour
        if ip.teredo is not None:
            yield from ip.teredo
        if ip in _NAT64:
            yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
