"""A throwaway PostgreSQL server for the tests: ``initdb`` in a temporary folder, ``pg_ctl start`` on a free port.

The server binaries come from the Debian ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``) or the
PATH. PostgreSQL refuses to run as root, so when the tests run as root the server runs as the ``postgres``
user that the Debian package creates. It listens on 127.0.0.1 only, trusts local connections (it lives for
one test session, in a folder nobody else can read) and is stopped and deleted at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _servers import free_port

SERVER_USER = "postgres"


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (the newest Debian version first), or ``None``."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def skip_reason() -> str | None:
    """Why a Postgres test cannot run here, or ``None`` when it can."""
    if find_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run the server as"
    return None


@dataclass
class PostgresServer:
    """A running server; :meth:`create_database` gives each test its own database."""

    bin_dir: Path
    folder: Path
    port: int
    user: str = "mesa"

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URI."""
        import psycopg

        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def stop(self) -> None:
        _as_server_user([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "immediate", "-w"],
                        check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_server_user(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)


def start_server() -> PostgresServer:
    """initdb + pg_ctl start on a free 127.0.0.1 port; raises ``RuntimeError`` with the server's log on failure."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise RuntimeError(skip_reason())
    folder = Path(tempfile.mkdtemp(prefix="mesa-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, folder=folder, port=free_port())
    data = folder / "data"
    try:
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", server.user, "-A", "trust", "-E", "UTF8"])
        options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
        _as_server_user([str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w"])
    except subprocess.CalledProcessError as exc:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
    return server
