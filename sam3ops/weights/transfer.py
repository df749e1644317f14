"""Fetch one file of a hub repo, resuming across runs.

huggingface_hub resolves everything around the bytes: the URL, auth headers, redirects, metadata
and its errors. For the bytes themselves it has two paths, and we pick per file:

- Xet-backed files (how huggingface.co stores large files): ``hf_hub_download``, whose Xet client
  fetches chunks in parallel and keeps them in a cache that later runs reuse.
- Plain HTTP (mirrors behind ``HF_ENDPOINT``, LFS on a CDN): huggingface_hub 2.4 streams these
  through httpx2 at about a quarter of curl's speed on loopback (185 vs 808 MB/s, measured) and
  starts a file from zero in a new process. We stream them with :mod:`sam3ops.weights.resumable`
  (the same download the registry pull uses) into a ``.part`` file that survives the process, so
  the next run resumes it with a Range request.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from urllib.parse import urlparse

# Imported here, not inside fetch(): their first import costs a few hundred ms that would
# otherwise be timed as transfer.
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.utils import build_hf_headers

from sam3ops.weights import resumable

log = logging.getLogger(__name__)

PART_DIR = Path(".cache") / "sam3ops" / "download"
# Retry a dropped connection as long as each attempt makes progress; give up after 5 attempts in a
# row that got no byte further (about 20 s of a server that does not answer), or 100 in all.
RETRY = resumable.RetryPolicy(stalled_attempts=5, max_attempts=100)


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


def fetch(*, repo_id: str, path: str, commit: str, output: Path, token: str | None, endpoint: str,
          expected_size: int, retry: resumable.RetryPolicy | None = None) -> int:
    """Download ``path`` of ``repo_id`` at ``commit`` to ``output/path``; return bytes transferred.

    Args:
        retry: when the plain-HTTP path gives up (default :data:`RETRY`).

    Raises:
        huggingface_hub errors from the metadata request (gated, not found, ...),
        resumable.TransferError when the connection keeps failing (the ``.part`` file is kept),
        requests.HTTPError for a status not worth retrying, IntegrityError when the server's
        size is not the hub's, OSError from the local disk.
    """
    url = hf_hub_url(repo_id, path, revision=commit, endpoint=endpoint)
    metadata = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    if metadata.xet_file_data is not None and importlib.util.find_spec("hf_xet") is not None:
        hf_hub_download(repo_id, path, revision=commit, local_dir=output, token=token, endpoint=endpoint)
        return expected_size

    headers = build_hf_headers(token=token)
    if urlparse(metadata.location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # a signed CDN URL: the token must not travel off the hub
    part = part_path(output, path, metadata.etag or commit)
    part.parent.mkdir(parents=True, exist_ok=True)
    _forget_other_parts(output, path, keep=part)
    start = part.stat().st_size if part.exists() else 0
    with _progress_bar(expected_size, start, path) as bar:
        fetched = resumable.download(metadata.location, output / path, part=part, size=expected_size,
                                     headers=headers, progress=bar.update, retry=retry or RETRY, name=path)
    return fetched.received
