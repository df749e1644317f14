"""Fetch one file of a hub repo, resuming across runs.

huggingface_hub resolves everything around the bytes: the URL, auth headers, redirects, metadata
and its errors. For the bytes themselves it has two paths, and we pick per file:

- Xet-backed files (how huggingface.co stores large files): ``hf_hub_download``, whose Xet client
  fetches chunks in parallel and keeps them in a cache that later runs reuse.
- Plain HTTP (mirrors behind ``HF_ENDPOINT``, LFS on a CDN): huggingface_hub 2.4 streams these
  through httpx2 at about a quarter of curl's speed on loopback (185 vs 808 MB/s, measured) and
  starts a file from zero in a new process. We stream them with ``requests`` into a ``.part`` file
  that survives the process, so the next run resumes it with a Range request.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

# Imported here, not inside fetch(): their first import costs a few hundred ms that would
# otherwise be timed as transfer.
import requests
import urllib3
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.utils import build_hf_headers
from tqdm.utils import CallbackIOWrapper

log = logging.getLogger(__name__)

PART_DIR = Path(".cache") / "sam3ops" / "download"
# Below glibc's mmap threshold (128 KiB), so each chunk comes from the reused heap instead of a
# fresh mmap that the kernel must fault in and zero: once torch and mlflow are imported, 1 MiB
# chunks ran at ~600 MB/s on loopback and 64 KiB ones at ~1000 (measured).
CHUNK_BYTES = 64 * 1024
# Retry a dropped connection as long as each attempt makes progress; give up after this many
# attempts in a row that got no byte further.
MAX_STALLED_ATTEMPTS = 5
# Upper bound on attempts for one file in one run, progress or not.
MAX_ATTEMPTS = 100
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60


class TransferError(ConnectionError):
    """The connection kept failing; what arrived is kept in the ``.part`` file for the next run."""


def part_path(output: Path, path: str, key: str) -> Path:
    """Where the partial bytes of ``path`` (version ``key``) are kept between runs."""
    safe_key = "".join(c for c in key if c.isalnum())[:16] or "nokey"
    return output / PART_DIR / f"{path}.{safe_key}.part"


def partial_bytes(output: Path, path: str) -> int:
    """Bytes of ``path`` already held in ``.part`` files (any version)."""
    folder = (output / PART_DIR / path).parent
    return sum(p.stat().st_size for p in folder.glob(f"{Path(path).name}.*.part")) if folder.is_dir() else 0


def _forget_other_parts(output: Path, path: str, keep: Path) -> None:
    folder = (output / PART_DIR / path).parent
    if folder.is_dir():
        for stale in folder.glob(f"{Path(path).name}.*.part"):
            if stale != keep:
                stale.unlink(missing_ok=True)


def _progress_bar(total: int | None, initial: int, name: str):
    """The hub's own tqdm: ``HF_HUB_DISABLE_PROGRESS_BARS`` turns it off, as for hf_hub_download."""
    from huggingface_hub.utils import tqdm as hf_tqdm
    from huggingface_hub.utils.tqdm import is_tqdm_disabled

    level = logging.getLogger("huggingface_hub").getEffectiveLevel()
    return hf_tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                   disable=is_tqdm_disabled(level))


def _stream_once(url: str, headers: dict[str, str], part: Path, bar) -> None:
    """One GET from the current end of ``part``; appends what arrives, restarts if Range is ignored."""
    offset = part.stat().st_size if part.exists() else 0
    request_headers = dict(headers, **({"Range": f"bytes={offset}-"} if offset else {}))
    with requests.get(url, headers=request_headers, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
        if response.status_code == 416:  # nothing left past offset: the part file is already whole
            return
        response.raise_for_status()
        if offset and response.status_code != 206:  # the server sent the whole file: start over
            offset = 0
            bar.reset(total=bar.total)
        with open(part, "r+b" if offset else "wb") as handle:
            handle.seek(offset)
            handle.truncate()
            # Straight from urllib3's stream to the file, a chunk at a time: every byte that arrived is
            # on disk when the connection breaks. (requests' iter_content generator, or 1 MiB
            # chunks, ran at half of curl's speed here; this matches curl: benchmarks/REPORT.md.)
            shutil.copyfileobj(response.raw, CallbackIOWrapper(bar.update, handle, "write"), CHUNK_BYTES)


def fetch(*, repo_id: str, path: str, commit: str, output: Path, token: str | None, endpoint: str,
          expected_size: int) -> int:
    """Download ``path`` of ``repo_id`` at ``commit`` to ``output/path``; return bytes transferred.

    Raises:
        huggingface_hub errors from the metadata request (gated, not found, ...), TransferError
        when the connection keeps failing, OSError from the local disk.
    """
    url = hf_hub_url(repo_id, path, revision=commit, endpoint=endpoint)
    metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    if metadata.xet_file_data is not None and importlib.util.find_spec("hf_xet") is not None:
        hf_hub_download(repo_id, path, revision=commit, local_dir=output, token=token, endpoint=endpoint)
        return expected_size

    headers = build_hf_headers(token=token)
    headers["Accept-Encoding"] = "identity"  # sizes and ranges are about the bytes on disk
    if urlparse(metadata.location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # a signed CDN URL: the token must not travel off the hub
    part = part_path(output, path, metadata.etag or commit)
    part.parent.mkdir(parents=True, exist_ok=True)
    _forget_other_parts(output, path, keep=part)
    start = part.stat().st_size if part.exists() else 0
    if start > expected_size:
        part.unlink()
        start = 0

    stalled = 0
    with _progress_bar(expected_size, start, path) as bar:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            before = part.stat().st_size if part.exists() else 0
            if before == expected_size:
                break
            try:
                _stream_once(metadata.location, headers, part, bar)
            except (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError) as exc:
                now = part.stat().st_size if part.exists() else 0
                stalled = 0 if now > before else stalled + 1
                log.warning("%s: connection lost at %d of %d bytes (%s); resuming", path, now, expected_size,
                            type(exc).__name__)
                if stalled >= MAX_STALLED_ATTEMPTS or attempt == MAX_ATTEMPTS:
                    raise TransferError(f"{path}: the connection kept failing") from None
                time.sleep(min(2 ** stalled, 8) if stalled else 0)
    got = part.stat().st_size if part.exists() else 0
    if got != expected_size:
        raise TransferError(f"{path}: got {got} bytes, expected {expected_size}")
    destination = output / path
    destination.parent.mkdir(parents=True, exist_ok=True)
    part.replace(destination)
    return expected_size - start
