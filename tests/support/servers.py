"""Real servers for tests: an ``mlflow server`` subprocess on 127.0.0.1 (sqlite or PostgreSQL backend,
artifacts through its proxy into a folder or an S3 bucket), a throwaway PostgreSQL cluster, and moto's
S3 server (``moto_server``, what MLflow's own test suite runs S3 against).

PostgreSQL comes from Debian's packages (``apt-get install postgresql``; binaries under
``/usr/lib/postgresql/<major>/bin``). It refuses to run as root, so as root the cluster belongs to the
``postgres`` user the package creates. Missing binaries skip the PostgreSQL tests with a reason, unless
``SAM3OPS_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns that into a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

VENV_BIN = Path(sys.executable).parent
REQUIRE_POSTGRES_ENV = "SAM3OPS_REQUIRE_POSTGRES"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail with the process log when it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path | None, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log and log.exists() else ""


def stop_process_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop ``proc`` and every process it started (it leads its own session)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    # uvicorn workers can outlive their parent for a moment: make sure the group is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def server_env(**extra: str) -> dict[str, str]:
    """Environment for server subprocesses: the venv first on PATH, no background job runner."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # huey consumers: ~700 MB we do not need
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    env.update(extra)
    return env


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with the artifact proxy (``mlflow-artifacts:``).

    Args:
        backend_uri: sqlite or PostgreSQL URI of the tracking and registry store.
        artifacts: folder behind ``--artifacts-destination``, or an ``s3://bucket/prefix`` URI (then
            ``env`` carries ``MLFLOW_S3_ENDPOINT_URL`` and the credentials: :meth:`MotoS3.server_env`).
        workers: uvicorn worker processes (one starts in half the time of two on 2 cores, and
            still serves requests concurrently: Flask runs in its thread pool).
        extra_args, env: more ``mlflow server`` options and environment variables.
    """

    def __init__(self, backend_uri: str, artifacts: Path | str, *, workers: int = 1, log: Path | None = None,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        remote = isinstance(artifacts, str) and "://" in artifacts
        self.backend_uri, self.workers = backend_uri, workers
        self.artifacts: Path | str = artifacts if remote else Path(artifacts)
        self.extra_args, self.env = tuple(extra_args), dict(env or {})  # e.g. --app-name basic-auth
        self.port = free_port()
        self.log = log or Path(tempfile.mkstemp(prefix="mlflow-server-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> MlflowServer:
        """Start (or restart, on the same port and stores) and wait for ``/health``."""
        if isinstance(self.artifacts, Path):
            self.artifacts.mkdir(parents=True, exist_ok=True)
        command = [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", self.backend_uri,
                   "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers), *self.extra_args]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env(**self.env),
                                         start_new_session=True)
        wait_for_http(f"{self.uri}/health", timeout=timeout, proc=self.proc, log=self.log)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and its workers (SIGKILL: as if the machine died)."""
        if self.proc is not None:
            stop_process_group(self.proc, sig)
            self.proc = None

    def restart(self) -> None:
        self.stop(signal.SIGKILL)
        self.start()


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with initdb, or initdb's folder on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Postgres:
    """A PostgreSQL cluster in a temp folder on a free port, trust auth on 127.0.0.1 only.

    As root it runs as the ``postgres`` user (PostgreSQL refuses root); otherwise as the caller.
    """

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = free_port()
        self.user = "sam3ops"
        self.run_as = None
        if os.geteuid() == 0:
            try:
                self.run_as = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and no `postgres` user exists to own the cluster "
                                   "(apt-get install postgresql creates it)") from None
        # Not under pytest's tmp folders: those are private to root, the postgres user cannot enter them.
        self.root = Path(tempfile.mkdtemp(prefix="sam3ops-pg-"))
        if self.run_as:
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        self.data = self.root / "data"
        self._databases = 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self.run_as:
            command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=check, cwd=self.root)

    def start(self) -> Postgres:
        try:
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                      "-E", "UTF8", "--no-sync")
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"), "-w",
                      "-t", "60", "-o", f"-k {self.root} -p {self.port} -h 127.0.0.1 -c fsync=off", "start")
        except subprocess.CalledProcessError as exc:
            log = (self.root / "postgres.log")
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.strip()} {detail}") from None
        return self

    def new_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URI (one per mlflow server: no shared state)."""
        self._databases += 1
        name = f"mlflow{self._databases}"
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2-binary.
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL cluster for the session (skipped with a reason where it is not installed)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{reason} and {REQUIRE_POSTGRES_ENV}=1")
        pytest.skip(reason)
    server = Postgres(bin_dir).start()
    yield server
    server.stop()


def start_mlflow_server(kind: str, tmp: Path, request) -> MlflowServer:
    """An mlflow server on ``kind`` (``sqlite`` or ``postgresql``) with its artifacts under ``tmp``."""
    if kind == "sqlite":
        backend = f"sqlite:///{tmp / 'mlflow.db'}"
    elif kind == "postgresql":
        backend = request.getfixturevalue("postgres").new_database()
    else:
        raise ValueError(kind)
    return MlflowServer(backend, tmp / "artifacts", log=tmp / "server.log").start()


class MotoS3:
    """moto's S3 server (``moto_server``) on 127.0.0.1: an S3-compatible endpoint with fake credentials.

    It keeps objects in its own process (large ones spill to temp files) and speaks the S3 API MLflow's
    artifact repository and presigned URLs use, multipart uploads included.
    """

    ACCESS_KEY, SECRET_KEY, REGION = "testing-access-key", "testing-s3cret-key-never-logged", "us-east-1"

    def __init__(self, log: Path):
        self.port, self.log = free_port(), log
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> MotoS3:
        command = [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env(),
                                         start_new_session=True)
        wait_for_http(f"{self.endpoint}/moto-api/", timeout=timeout, proc=self.proc, log=self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None

    def server_env(self, endpoint: str | None = None) -> dict[str, str]:
        """What an ``mlflow server`` needs to reach this S3 (``endpoint`` overrides the URL)."""
        return {"MLFLOW_S3_ENDPOINT_URL": endpoint or self.endpoint, "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY, "AWS_DEFAULT_REGION": self.REGION}

    def client(self):
        """A boto3 S3 client on this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.ACCESS_KEY,
                            aws_secret_access_key=self.SECRET_KEY, region_name=self.REGION)

    def new_bucket(self, name: str) -> str:
        """Create bucket ``name``; return it."""
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """moto's S3 server for the session."""
    server = MotoS3(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()
