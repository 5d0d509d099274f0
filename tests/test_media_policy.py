"""Hostile media: where it may come from (MediaPolicy), sizes and types before reading, pixel limits before
decoding, one deadline per download, cancellation that frees the backend, one exception tree.

Every network test talks to a local HTTP server on 127.0.0.1 that the test starts itself. Waits are
bounded by events and generous joins, never by timing assertions.
"""

from __future__ import annotations

import http.server
import math
import os
import socket
import ssl
import struct
import sys
import threading
import time
import wave
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _media as M

import mesa
from mesa.errors import MesaError
from mesa.state import MediaRef, Turn
from mesa.tools import Limits, MediaError, MediaPolicy, Perception, SpeechBackend, Transcript, load_audio, load_images
from mesa.tools import media as media_module
from mesa.tools.base import check_cancelled
from mesa.tools.media import fetch
from mesa.tools.policy import is_public_address
from mesa.tools.sniff import image_size, media_kind

GENEROUS = 60  # seconds a bounded operation may take on a loaded machine before we call it a hang


# --------------------------------------------------------------------------- fixtures


def _tone_wav(path: Path, seconds: float = 1.0, rate: int = 16_000) -> Path:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / rate))) for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` × ``height`` pixels in a few hundred bytes (an image bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def wav(tmp_path) -> Path:
    return _tone_wav(tmp_path / "tone.wav")


class Server:
    """A local HTTP server with the misbehaviours the tests need; records the Host headers it saw."""

    def __init__(self, files: dict[str, bytes], tls: ssl.SSLContext | None = None) -> None:
        self.hosts: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hosts.append(self.headers.get("Host", ""))
                path, _, query = self.path.partition("?")
                if path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query.removeprefix("to="))
                    self.end_headers()
                elif path == "/drip":  # one byte at a time, forever (until the client hangs up)
                    self.send_response(200)
                    self.end_headers()
                    self._forever(b"x", 0.05)
                elif path == "/endless":  # a body without end and without a length
                    self.send_response(200)
                    self.end_headers()
                    self._forever(b"x" * 65536, 0.0)
                elif path == "/truncated":  # announces more than it sends
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"RIFF" + b"x" * 1000)
                elif path == "/slow-headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                    self._forever(b"X-Pad: y\r\n", 0.05)
                elif path.lstrip("/") in files:
                    body = files[path.lstrip("/")]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def _forever(self, block: bytes, pause: float) -> None:
                deadline = time.monotonic() + 2 * GENEROUS
                try:
                    while time.monotonic() < deadline:
                        self.wfile.write(block)
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass  # the client hung up: that is what the test wants

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(wav):
    running = Server({"tone.wav": wav.read_bytes()})
    yield running
    running.close()


def _perceive(uri: str, **options) -> str | None:
    """The transcript cue's error for a turn whose audio is ``uri`` (``None`` when it was perceived)."""
    perception = Perception(speech=M.counting_speech(), cache=False, **options)
    return perception.perceive(Turn(audio=MediaRef(uri=uri)))["transcript"].error


def _in_thread(function, *args):
    """Run ``function`` in a daemon thread; (finished, result or exception) after at most GENEROUS seconds."""
    box: dict = {}

    def run():
        try:
            box["value"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GENEROUS)
    return not thread.is_alive(), box.get("value")


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped IPv6
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "not an address",
    ],
)
def test_private_local_and_reserved_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_public(address):
    assert is_public_address(address)


# --------------------------------------------------------------------------- URLs


def test_loopback_url_is_refused_by_default_and_allowed_when_the_host_says_so(server):
    url = f"{server.url}/tone.wav"
    error = _perceive(url)
    assert error and "URL not allowed" in error
    assert server.hosts == []  # refused before any connection
    for trick in (
        f"http://localhost:{server.port}/tone.wav",  # a DNS name that resolves to loopback
        f"http://2130706433:{server.port}/tone.wav",  # 127.0.0.1 as one number
        f"http://[::ffff:127.0.0.1]:{server.port}/tone.wav",
    ):
        assert "not allowed" in (_perceive(trick) or ""), trick
    assert server.hosts == []
    assert _perceive(url, policy=MediaPolicy(allow_private_networks=True)) is None
    assert _perceive(url, policy={"allowed_hosts": ["127.0.0.1"]}) is None


def test_a_redirect_to_a_private_address_is_refused(server):
    target = f"{server.url}/tone.wav"
    first_hop = f"http://localhost:{server.port}/redirect?to={target}"
    let_localhost_in = MediaPolicy(allowed_hosts=("localhost",))
    # the allow-list lets the first hop through (it is fetched directly) ...
    assert _perceive(f"http://localhost:{server.port}/tone.wav", policy=let_localhost_in) is None
    # ... but the redirect to 127.0.0.1 is checked again and refused
    error = _perceive(first_hop, policy=let_localhost_in)
    assert error and "URL not allowed" in error and "127.0.0.1" in error
    # redirects off: refused even where the target would be allowed
    no_redirects = MediaPolicy(allow_private_networks=True, max_redirects=0)
    assert "redirects" in (_perceive(first_hop, policy=no_redirects) or "")
    # and a redirect cannot lead to a local file
    to_file = f"{server.url}/redirect?to=file:///etc/passwd"
    assert "unsupported URL scheme: file" in (_perceive(to_file, policy=MediaPolicy(allow_private_networks=True)) or "")


def test_the_connection_goes_to_the_address_that_was_checked(server, monkeypatch, tmp_path):
    """A DNS answer that changes after the check (rebinding) is never used: the name is resolved once per hop."""
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def rebinding_dns(host, port, *args, **kwargs):
        if host == "media.example":
            asked.append(host)
            address = "127.0.0.1" if len(asked) == 1 else "10.255.255.1"  # the second answer must never be used
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    policy = MediaPolicy(allowed_hosts=("media.example",))
    limits = Limits(download_timeout=GENEROUS)
    path = fetch(f"http://media.example:{server.port}/tone.wav", tmp_path, limits, policy)
    assert path.read_bytes()[:4] == b"RIFF"
    assert asked == ["media.example"]
    assert server.hosts == [f"media.example:{server.port}"]  # the Host header keeps the name


def _fake_dns(monkeypatch, names: dict[str, str]) -> list[str]:
    """Resolve the given names to the given addresses; the list records every name asked."""
    real_getaddrinfo = socket.getaddrinfo
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host in names:
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


@pytest.mark.skipif(not M.have("openssl"), reason="needs the openssl command to make a certificate")
def test_https_keeps_the_name_for_sni_and_the_certificate_check(tmp_path, wav, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    M._run(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "1", "-subj", "/CN=media.example", "-addext", "subjectAltName=DNS:media.example",
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = Server({"tone.wav": wav.read_bytes()}, tls=tls)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test's own certificate
        asked = _fake_dns(monkeypatch, {"media.example": "127.0.0.1", "other.example": "127.0.0.1"})
        policy = MediaPolicy(allowed_hosts=("media.example", "other.example"))
        for folder in ("ok", "no"):
            (tmp_path / folder).mkdir()
        path = fetch(f"https://media.example:{server.port}/tone.wav", tmp_path / "ok", Limits(), policy)
        assert path.read_bytes()[:4] == b"RIFF" and asked == ["media.example"]
        # same address, another name: the certificate does not match, so the check still bites
        with pytest.raises(MediaError, match="download failed: SSLCertVerificationError.*other.example"):
            fetch(f"https://other.example:{server.port}/tone.wav", tmp_path / "no", Limits(), policy)
    finally:
        server.close()


def test_file_urls_and_other_schemes_are_refused(tmp_path, wav):
    assert "file URLs are not allowed" in (_perceive(f"file://{wav}") or "")
    assert "file URLs are not allowed" in (_perceive("file:///etc/passwd") or "")
    assert "unsupported URL scheme: gopher" in (_perceive("gopher://example.org/x") or "")


@pytest.mark.parametrize("path", ["/drip", "/slow-headers"])
def test_a_dripping_server_cannot_stretch_the_download_deadline(server, tmp_path, path):
    policy = MediaPolicy(allow_private_networks=True)
    limits = Limits(download_timeout=1.0)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    finished, outcome = _in_thread(fetch, f"{server.url}{path}", downloads, limits, policy)
    assert finished, "the download outlived its deadline"
    assert isinstance(outcome, MediaError) and "too slow" in str(outcome)
    assert not list(downloads.iterdir())  # the partial file is gone


def test_a_slow_dns_answer_counts_against_the_download_deadline(monkeypatch, tmp_path):
    real_getaddrinfo = socket.getaddrinfo
    never = threading.Event()

    def hanging_dns(host, port, *args, **kwargs):
        if host == "slow.example":
            never.wait(2 * GENEROUS)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging_dns)
    try:
        finished, outcome = _in_thread(fetch, "http://slow.example/a.wav", tmp_path, Limits(download_timeout=0.5))
        assert finished
        assert isinstance(outcome, MediaError) and "too slow: resolving slow.example" in str(outcome)
    finally:
        never.set()


def test_an_endless_body_is_cut_at_the_byte_limit(server, tmp_path):
    policy = MediaPolicy(allow_private_networks=True)
    finished, outcome = _in_thread(fetch, f"{server.url}/endless", tmp_path, Limits(max_bytes=200_000), policy)
    assert finished
    assert isinstance(outcome, MediaError) and "too large" in str(outcome)


def test_a_truncated_download_is_an_error(server, tmp_path):
    with pytest.raises(MediaError, match="closed before the end"):
        fetch(f"{server.url}/truncated", tmp_path, Limits(), MediaPolicy(allow_private_networks=True))
    assert not list(tmp_path.glob("download*"))


def test_downloads_are_private_files(server, tmp_path):
    path = fetch(f"{server.url}/tone.wav", tmp_path, Limits(), MediaPolicy(allow_private_networks=True))
    assert path.stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- local files


def test_local_files_only_inside_allowed_folders(tmp_path, wav):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    inside = uploads / "turn.wav"
    inside.write_bytes(wav.read_bytes())
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav.read_bytes())
    (uploads / "link.wav").symlink_to(secret)
    policy = MediaPolicy(allowed_dirs=[uploads])
    assert _perceive(str(inside), policy=policy) is None
    refused = {
        given: _perceive(given, policy=policy)
        for given in (
            str(uploads / ".." / "secret.wav"),  # ../ escape of a file that exists
            str(uploads / "link.wav"),  # a symlink out of the folder
            str(secret),  # exists, outside
            str(tmp_path / "missing.wav"),  # missing, outside
            str(uploads / "missing.wav"),  # missing, inside
            "/etc/shadow",
        )
    }
    # one message for all of them: it never tells whether a file exists outside the allowed area
    assert {error.replace(given, "<path>") for given, error in refused.items()} == {
        "missing or not allowed file: <path>"
    }
    assert _perceive(str(inside), policy=MediaPolicy(allow_local_files=False)) == (
        f"missing or not allowed file: {inside}"
    )
    assert _perceive(str(secret)) is None  # the library default: the caller chose the path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_devices_and_named_pipes_are_refused_without_reading(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    opened: list[str] = []
    real_open = os.open

    def recording_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    for special in ("/dev/zero", str(fifo)):
        finished, ref = _in_thread(MediaRef.from_source, special)
        assert finished, f"hashing {special} did not end"
        assert ref.sha256 is None
        finished, error = _in_thread(_perceive, special)
        assert finished, f"perceiving {special} did not end"
        assert error == f"not a regular file: {special}"
    with pytest.raises(MediaError, match="not a regular file"):
        media_module.sha256_file("/dev/zero")
    assert not {"/dev/zero", str(fifo)} & set(opened)  # refused from os.stat, never opened


# --------------------------------------------------------------------------- types and pixels


def test_the_type_comes_from_the_bytes_not_the_name(tmp_path, wav):
    fake_image = tmp_path / "photo.png"
    fake_image.write_text("<html>not an image</html>\n" * 10)
    with pytest.raises(MediaError, match="unknown type"):
        load_images(fake_image)
    image_as_audio = tmp_path / "voice.wav"
    _png_header_only(image_as_audio, 10, 10)
    with pytest.raises(MediaError, match="no audio track"):
        load_audio(image_as_audio)
    assert media_kind(wav.read_bytes()[:64]) == "av"
    assert media_kind(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20) == "image/png"
    assert media_kind(b"hello world") is None


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {}),
        ("PPM", {}),
    ],
)
def test_image_size_is_read_from_the_header(tmp_path, fmt, options):
    from PIL import Image

    path = tmp_path / f"image.{fmt.lower()}"
    Image.new("RGB", (37, 23), (120, 30, 200)).save(path, fmt, **options)
    kind = media_kind(path.read_bytes()[:256])
    assert kind is not None and kind.startswith("image/")
    assert image_size(path, kind) == (37, 23)


def test_webp_extended_header(tmp_path):
    from PIL import Image

    path = tmp_path / "alpha.webp"
    Image.new("RGBA", (41, 19), (1, 2, 3, 100)).save(path, "WEBP", exif=b"Exif\x00\x00")
    assert path.read_bytes()[12:16] == b"VP8X"
    assert image_size(path, "image/webp") == (41, 19)


def test_image_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    import cv2

    bomb = _png_header_only(tmp_path / "bomb.png", 30_000, 30_000)  # 900 megapixels in a few hundred bytes

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded before the pixel limit was checked")

    monkeypatch.setattr(cv2, "imdecode", must_not_decode)
    with pytest.raises(MediaError, match="image too large: 30000x30000"):
        load_images(bomb)
    error = Perception(face=_NoFace(), cache=False).perceive(Turn.from_inputs(image=bomb))["face"].error
    assert error == "image too large: 30000x30000 pixels > limit 50000000"


class _NoFace:
    name = "no-face"
    version = None
    kind = "face"

    def recognize(self, images):  # pragma: no cover - never reached: the image is refused first
        raise AssertionError("backend reached")

    async def arecognize(self, images):  # pragma: no cover
        raise AssertionError("backend reached")


@pytest.mark.skipif(not M.have("ffmpeg"), reason="needs ffmpeg")
def test_video_frame_size_is_checked_from_the_container_before_decoding(tmp_path, monkeypatch):
    from PIL import Image

    still = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), (90, 90, 90)).save(still)
    video = tmp_path / "big.mp4"
    M._run(
        "ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", "2", "-i", str(still), "-t", "1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video),
    )  # fmt: skip
    original = media_module._open_container

    class NoDecoding:
        def __init__(self, container):
            self._container = container

        def __getattr__(self, name):
            return getattr(self._container, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._container.close()

        def decode(self, *args, **kwargs):
            raise AssertionError("frames decoded before the frame size was checked")

    monkeypatch.setattr(media_module, "_open_container", lambda path: NoDecoding(original(path)))
    with pytest.raises(MediaError, match="image too large: 1200x1000"):
        load_images(video, limits=Limits(max_image_pixels=1_000_000))


# --------------------------------------------------------------------------- cancellation


class CooperativeBlocking(SpeechBackend):
    """The first call blocks until its caller gives up (it checks between 'segments'); later calls answer."""

    name = "cooperative-blocking"

    def __init__(self) -> None:
        super().__init__()
        self.version = "1"
        self.calls = 0
        self.stopped = threading.Event()

    def transcribe(self, audio) -> Transcript:
        with self._lock:
            self.calls += 1
            if self.calls == 1:
                try:
                    while True:  # one "segment" after another until told to stop
                        check_cancelled()
                        time.sleep(0.01)
                finally:
                    self.stopped.set()
            return self._stamp(Transcript(text=f"call {self.calls}"))  # type: ignore[return-value]


class NeverChecks(SpeechBackend):
    """The first call hangs inside its model and never checks; it holds the lock until released."""

    name = "never-checks"
    abandon_after = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.version = "1"
        self.release = threading.Event()
        self.loads = 0
        self.calls = 0

    def _load(self):
        self.loads += 1
        return f"model {self.loads}"

    def transcribe(self, audio) -> Transcript:
        with self._lock:
            model = self.model
            self.calls += 1
            if self.calls == 1:
                self.release.wait(2 * GENEROUS)
            return self._stamp(Transcript(text=f"answered by {model}"))  # type: ignore[return-value]


def test_a_timed_out_call_stops_and_frees_the_backend_for_the_next_one(wav):
    backend = CooperativeBlocking()
    timed_out = Perception(speech=backend, cache=False, limits=Limits(timeout=2.0))  # long enough for the call to start
    assert timed_out.perceive(Turn.from_inputs(audio=wav))["transcript"].error == "timed out"
    assert backend.stopped.wait(GENEROUS), "the abandoned call kept running"
    patient = Perception(speech=backend, cache=False, limits=Limits(timeout=GENEROUS))
    result = patient.perceive(Turn.from_inputs(audio=wav))["transcript"]
    assert result.ok and result.data["text"] == "call 2"


def test_a_stuck_call_that_never_checks_is_left_behind(wav):
    backend = NeverChecks()
    try:
        timed_out = Perception(speech=backend, cache=False, limits=Limits(timeout=2.0))  # long enough for the call to start
        assert timed_out.perceive(Turn.from_inputs(audio=wav))["transcript"].error == "timed out"
        patient = Perception(speech=backend, cache=False, limits=Limits(timeout=GENEROUS))
        result = patient.perceive(Turn.from_inputs(audio=wav))["transcript"]
        assert not backend.release.is_set()  # the stuck call still holds the old lock and model
        assert result.ok and result.data["text"] == "answered by model 2"  # a fresh model, no waiting
    finally:
        backend.release.set()


# --------------------------------------------------------------------------- one exception tree


def test_perception_errors_are_mesa_errors(monkeypatch):
    from mesa import tools

    assert tools.MissingExtraError is mesa.MissingExtraError
    assert issubclass(tools.MediaError, MesaError) and issubclass(tools.MediaError, ValueError)
    assert issubclass(tools.BackendError, MesaError)
    assert issubclass(tools.BackendNotFoundError, MesaError) and issubclass(tools.BackendNotFoundError, LookupError)
    monkeypatch.setitem(sys.modules, "deepface", None)  # the deepface extra is missing
    with pytest.raises(mesa.MissingExtraError) as caught:
        tools.get_backend("face", "deepface")
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, MesaError)
    assert caught.value.extra == "deepface" and 'pip install "mesa-esc[deepface]"' in str(caught.value)
    try:
        load_images("/no/such/file.png")
    except mesa.MesaError as exc:
        assert isinstance(exc, MediaError)
    exported = [getattr(tools, name) for name in tools.__all__]
    errors = [obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert errors and all(issubclass(error, MesaError) for error in errors)
    from mesa.tools.cancel import CallCancelledError

    assert issubclass(CallCancelledError, MesaError)


def test_a_waiting_call_gives_up_when_its_caller_does():
    from mesa.tools.cancel import _CURRENT, CallCancelledError, CallLock, CancelToken

    lock = CallLock(grace=GENEROUS)
    held, release = threading.Event(), threading.Event()

    def holder():  # a patient call: its caller never gives up
        with lock:
            held.set()
            release.wait(GENEROUS)

    first = threading.Thread(target=holder, daemon=True)
    first.start()
    assert held.wait(GENEROUS)
    token = CancelToken()

    def waiter():
        _CURRENT.set(token)
        with lock:
            return "ran"

    token.cancel()  # the second call's caller has given up while it waits
    finished, outcome = _in_thread(waiter)
    assert finished and isinstance(outcome, CallCancelledError)
    assert first.is_alive()  # it gave up while the first call still held the lock
    release.set()
    first.join(GENEROUS)
    with lock:  # and the lock is free afterwards
        pass


# --------------------------------------------------------------------------- through the agent


def test_a_server_policy_reaches_a_normal_turn(make_agent, tmp_path, wav):
    from mesa.testing import ScriptedModel
    from mesa.tools import resolve_perception

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "turn.wav").write_bytes(wav.read_bytes())
    spec = {"speech": M.counting_speech(), "cache": False, "policy": {"allowed_dirs": [str(uploads)]}}
    assert resolve_perception(spec).policy.allowed_dirs == (uploads,)
    agent = make_agent(model=ScriptedModel(reply="I am listening."), perception=spec)
    refused = agent.respond("hello", audio="/etc/passwd", thread_id="t1")
    assert refused.perception["transcript"].error == "missing or not allowed file: /etc/passwd"
    assert refused.text.endswith("I am listening.")  # the turn is still answered
    allowed = agent.respond("hello", audio=uploads / "turn.wav", thread_id="t2")
    assert allowed.perception["transcript"].ok


def test_a_turn_can_be_made_without_opening_its_media(monkeypatch, wav):
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    turn = Turn.from_inputs(audio="/etc/shadow", image=wav, hash_media=False)
    assert turn.audio.uri == "/etc/shadow" and turn.audio.sha256 is None and turn.image.sha256 is None
    assert opened == []
    assert Turn.from_inputs(image=wav).image.sha256  # the default still hashes a regular file
