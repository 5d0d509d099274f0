"""The opt-in larger crisis reader: assembling all-mpnet-base-v2 from its PyPI parts, safely, once; the encoder.

Unit tests build a small fake archive of their own and split it into five parts; only the integration test reads
the real uploads.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from mesa.errors import ClassifierFileError, MissingExtraError
from mesa.safety import mpnet

FILES = {
    "all-mpnet-base-v2/modules.json": b'[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]',
    "all-mpnet-base-v2/config.json": b'{"model_type": "mpnet"}',
    "all-mpnet-base-v2/1_Pooling/config.json": b'{"word_embedding_dimension": 768}',
    "all-mpnet-base-v2/model.safetensors": bytes(range(256)) * 40,
}
JUNK = {
    "all-mpnet-base-v2/desktop.ini": b"[.ShellClassInfo]\r\n",
    "all-mpnet-base-v2/1_Pooling/desktop.ini": b"[.ShellClassInfo]\r\n",
}


def make_zip(entries: dict[str, bytes], *, folders: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        if folders:
            zipped.writestr("all-mpnet-base-v2/", b"")
            zipped.writestr("all-mpnet-base-v2/1_Pooling/", b"")
        for name, data in entries.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def install_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, archive: bytes, *, digest: str | None = None
) -> list[Path]:
    """Split ``archive`` into five part files under ``tmp_path/parts`` and point the module at them."""
    folder = tmp_path / "parts"
    folder.mkdir()
    size = len(archive) // 5 + 1
    parts = []
    for i in range(5):
        part = folder / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(archive[i * size : (i + 1) * size])
        parts.append(part)
    assert b"".join(p.read_bytes() for p in parts) == archive
    monkeypatch.setattr(mpnet, "part_files", lambda: list(parts))
    monkeypatch.setattr(mpnet, "ARCHIVE_SHA256", digest or hashlib.sha256(archive).hexdigest())
    return parts


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- assembly ------------------------------------------------------------------------------------------------------


def test_assembles_the_model_folder_once_with_private_modes(tmp_path, monkeypatch):
    parts = install_parts(tmp_path, monkeypatch, make_zip(FILES | JUNK))
    cache = tmp_path / "cache"

    folder = mpnet.model_dir(cache)

    assert folder == cache / f"all-mpnet-base-v2-{mpnet.ARCHIVE_SHA256[:12]}"
    assert (folder / "modules.json").is_file()
    for name, data in FILES.items():
        assert (folder / name.removeprefix("all-mpnet-base-v2/")).read_bytes() == data
    assert not list(folder.rglob("desktop.ini"))
    assert everything_under(cache) == sorted(
        [folder.name, f"{folder.name}/.complete", f"{folder.name}/1_Pooling"]
        + [f"{folder.name}/{name.removeprefix('all-mpnet-base-v2/')}" for name in FILES]
    ), "no temporary zip or folder is left in the cache"
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

    for part in parts:
        part.unlink()
    assert mpnet.model_dir(cache) == folder, "a complete folder is used without reading the parts again"


def test_default_cache_is_mesas_cache_folder(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES))
    monkeypatch.setenv("MESA_CACHE_DIR", str(tmp_path / "elsewhere"))

    folder = mpnet.model_dir()

    assert folder.parent == tmp_path / "elsewhere"
    assert (folder / "modules.json").read_bytes() == FILES["all-mpnet-base-v2/modules.json"]


def test_a_folder_without_its_marker_is_assembled_again(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES))
    cache = tmp_path / "cache"
    stale = cache / f"all-mpnet-base-v2-{mpnet.ARCHIVE_SHA256[:12]}"
    stale.mkdir(parents=True)
    (stale / "modules.json").write_bytes(b"half written")

    folder = mpnet.model_dir(cache)

    assert folder == stale
    assert (folder / "modules.json").read_bytes() == FILES["all-mpnet-base-v2/modules.json"]
    assert (folder / ".complete").is_file()


def test_a_racing_process_that_finished_first_wins(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES))
    cache = tmp_path / "cache"
    target = cache / f"all-mpnet-base-v2-{mpnet.ARCHIVE_SHA256[:12]}"
    real_unpack = mpnet._unpack

    def unpack_while_another_process_finishes(archive: Path, folder: Path) -> None:
        real_unpack(archive, folder)
        target.mkdir()
        (target / "modules.json").write_bytes(b"the other process's copy")
        (target / ".complete").touch()

    monkeypatch.setattr(mpnet, "_unpack", unpack_while_another_process_finishes)

    folder = mpnet.model_dir(cache)

    assert folder == target
    assert (folder / "modules.json").read_bytes() == b"the other process's copy"
    assert everything_under(cache) == [target.name, f"{target.name}/.complete", f"{target.name}/modules.json"]


def test_a_wrong_digest_is_refused_and_leaves_nothing_behind(tmp_path, monkeypatch):
    archive = make_zip(FILES)
    install_parts(tmp_path, monkeypatch, archive, digest="0" * 64)
    cache = tmp_path / "cache"

    with pytest.raises(ClassifierFileError) as caught:
        mpnet.model_dir(cache)

    message = str(caught.value)
    assert "all-mpnet-base-v2" in message
    assert "0" * 64 in message and hashlib.sha256(archive).hexdigest() in message
    assert everything_under(cache) == []


@pytest.mark.parametrize(
    "name",
    [
        "all-mpnet-base-v2/../evil.txt",
        "all-mpnet-base-v2/1_Pooling/../../evil.txt",
        "all-mpnet-base-v2\\..\\evil.txt",
        "{outside}/evil.txt",
        "C:/evil.txt",
    ],
)
def test_names_that_escape_the_folder_are_refused(tmp_path, monkeypatch, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    name = name.format(outside=outside)
    assert name.startswith("/") or "C:" in name or ".." in name
    install_parts(tmp_path, monkeypatch, make_zip(FILES | {name: b"owned"}))
    cache = tmp_path / "cache"

    with pytest.raises(ClassifierFileError, match="absolute|climbs out"):
        mpnet.model_dir(cache)

    assert everything_under(cache) == []
    assert list(tmp_path.rglob("evil.txt")) == []


def test_an_archive_declaring_too_much_is_refused(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES))
    monkeypatch.setattr(mpnet, "MAX_UNPACKED_BYTES", sum(len(d) for d in FILES.values()) - 1)
    cache = tmp_path / "cache"

    with pytest.raises(ClassifierFileError, match="declares more than"):
        mpnet.model_dir(cache)

    assert everything_under(cache) == []


def test_the_limit_counts_every_declared_byte(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES))
    monkeypatch.setattr(mpnet, "MAX_UNPACKED_BYTES", sum(len(d) for d in FILES.values()))

    assert (mpnet.model_dir(tmp_path / "cache") / "modules.json").is_file()


def shrink_declared_size(archive: bytes, name: str, size: int) -> bytes:
    """The archive with ``name``'s uncompressed size in the central directory set to ``size`` (the lie a zip bomb tells)."""
    data = bytearray(archive)
    start = data.index(b"PK\x01\x02")
    while True:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46 : start + 46 + name_length] == name.encode():
            struct.pack_into("<I", data, start + 24, size)
            return bytes(data)
        start = data.index(b"PK\x01\x02", start + 4)


def test_an_entry_larger_than_declared_is_refused(tmp_path, monkeypatch):
    name = "all-mpnet-base-v2/model.safetensors"
    archive = shrink_declared_size(make_zip(FILES), name, 100)
    assert zipfile.ZipFile(io.BytesIO(archive)).getinfo(name).file_size == 100
    install_parts(tmp_path, monkeypatch, archive)
    cache = tmp_path / "cache"

    with pytest.raises(ClassifierFileError):
        mpnet.model_dir(cache)

    assert everything_under(cache) == []


def test_the_copy_stops_at_the_declared_size(tmp_path):
    class Overflowing:
        def open(self, info):
            return io.BytesIO(b"x" * 100)

    info = zipfile.ZipInfo("all-mpnet-base-v2/model.safetensors")
    info.file_size = 10

    with pytest.raises(ClassifierFileError, match="more than its declared 10 bytes"):
        mpnet._copy_limited(Overflowing(), info, tmp_path / "out")

    assert len((tmp_path / "out").read_bytes()) <= 10


def test_an_archive_without_modules_json_is_refused(tmp_path, monkeypatch):
    entries = {k: v for k, v in FILES.items() if not k.endswith("modules.json")}
    install_parts(tmp_path, monkeypatch, make_zip(entries))
    cache = tmp_path / "cache"

    with pytest.raises(ClassifierFileError, match="modules.json"):
        mpnet.model_dir(cache)

    assert everything_under(cache) == []


def test_entries_outside_the_model_folder_are_not_written(tmp_path, monkeypatch):
    install_parts(tmp_path, monkeypatch, make_zip(FILES | {"__MACOSX/._modules.json": b"junk", "README": b"junk"}))

    folder = mpnet.model_dir(tmp_path / "cache")

    assert not (folder / "__MACOSX").exists() and not (folder / "README").exists()
    assert not list(tmp_path.rglob("._modules.json"))


def test_links_are_not_written(tmp_path, monkeypatch):
    buffer = io.BytesIO(make_zip(FILES))
    with zipfile.ZipFile(buffer, "a") as zipped:
        link = zipfile.ZipInfo("all-mpnet-base-v2/vocab.txt")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(link, "/etc/passwd")
    install_parts(tmp_path, monkeypatch, buffer.getvalue())

    folder = mpnet.model_dir(tmp_path / "cache")

    assert (folder / "modules.json").is_file()
    assert not (folder / "vocab.txt").exists() and not (folder / "vocab.txt").is_symlink()


# -- the installed parts and the extra -------------------------------------------------------------------------


def test_a_missing_part_names_the_extra(monkeypatch):
    monkeypatch.setattr(mpnet, "PART_PACKAGES", ("mesa-test-no-such-distribution-part-001",))

    with pytest.raises(MissingExtraError) as caught:
        mpnet.part_files()

    assert 'pip install "mesa-esc[safety-large]"' in str(caught.value)
    assert caught.value.name == "mesa-test-no-such-distribution-part-001"
    assert isinstance(caught.value, ImportError)


def test_without_sentence_transformers_the_encoder_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)

    with pytest.raises(MissingExtraError, match=r"mesa-esc\[safety-large\]"):
        mpnet.MPNet(tmp_path)


def test_importing_the_module_loads_no_heavy_library():
    code = (
        "import sys, mesa.safety.mpnet\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'numpy', 'transformers') if m in sys.modules))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the real model (integration) ----------------------------------------------------------------------------------


def installed_parts() -> list[Path]:
    try:
        return mpnet.part_files()
    except MissingExtraError:
        pytest.skip(f"needs the all-mpnet-base-v2 part packages: {mpnet.INSTALL}")


@pytest.mark.integration
@pytest.mark.slow
def test_the_real_model_matches_sentence_transformers(tmp_path, monkeypatch):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import numpy as np

    assert len(installed_parts()) == 5
    monkeypatch.setenv("MESA_CACHE_DIR", str(tmp_path))
    texts = [
        "I want to end my life.",
        "I keep thinking about killing myself.",
        "The train to Lyon leaves at nine tomorrow morning.",
    ]

    encoder = mpnet.MPNet()
    vectors = encoder.encode(texts)

    started = time.monotonic()
    folder = mpnet.model_dir(tmp_path)
    assert time.monotonic() - started < 1.0, "the assembled folder is reused"
    assert folder.parent == tmp_path and (folder / "model.safetensors").is_file()
    assert not list(folder.rglob("desktop.ini"))
    assert encoder.identity == "all-mpnet-base-v2" and encoder.dim == 768
    assert vectors.shape == (3, 768) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 768)

    reference = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    expected = reference.encode(texts, normalize_embeddings=True)
    assert np.all(np.sum(vectors * expected, axis=1) > 0.9999)

    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3, (similar, unrelated)
