"""A real PostgreSQL server for tests: ``initdb`` into a temporary folder, a free port.

Debian's ``postgresql`` package provides the binaries (``make test`` installs it when
missing). PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 30.0


class PostgresError(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    data_dir: Path
    bin_dir: Path

    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its ``postgresql://`` URI."""
        self._psql(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def _psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(sql.encode())


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        found = shutil.which("initdb")
        if found is None:
            raise PostgresError(
                "PostgreSQL server binaries (initdb) not found; install Debian's 'postgresql' "
                "package (make test does this when it runs as root)"
            )
        return Path(found).parent
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres_user() -> dict[str, object]:
    """subprocess options that drop root to the 'postgres' user."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresError("running as root but there is no 'postgres' user") from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def start_postgres() -> tuple[PostgresServer, subprocess.Popen[bytes]]:
    """Start a server in a new folder of its own (pytest's folders are root-only)."""
    bin_dir = find_bin_dir()
    drop = _as_postgres_user()
    base = Path(tempfile.mkdtemp(prefix="lakelet-pg-"))
    data_dir = base / "data"
    socket_dir = base / "socket"
    socket_dir.mkdir(exist_ok=True)
    if drop:
        for path in (base, socket_dir):
            os.chown(path, drop["user"], drop["group"])  # type: ignore[arg-type]
    log = base / "postgres.log"
    init = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        capture_output=True,
        **drop,  # type: ignore[arg-type]
    )
    if init.returncode != 0:
        raise PostgresError(f"initdb failed: {init.stderr.decode(errors='replace')[-2000:]}")
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data_dir),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(socket_dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            **drop,  # type: ignore[arg-type]
        )
    server = PostgresServer("127.0.0.1", port, "postgres", data_dir, bin_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PostgresError(f"postgres exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            server._psql("SELECT 1")
            return server, process
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise PostgresError(f"postgres did not start in {START_TIMEOUT_S} s")


def stop_postgres(server: PostgresServer, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # fast shutdown: do not wait for pooled clients
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)
