"""Promotion: the refusals, the lock that makes racing promotions take turns, and a stale lock broken."""

from __future__ import annotations

import threading
import time

import pytest

from sam3ops.errors import PromotionRefusedError
from sam3ops.registry import promote, register
from sam3ops.registry.client import client
from sam3ops.registry.lock import LOCK_SUFFIX, LOCK_TIMEOUT_ENV
from sam3ops.registry.promotion import check_promotable, gpu_matches, history
from tests.support.cli import run_cli


def test_refusals_are_a_function_of_the_tags():
    assert gpu_matches("NVIDIA H100 80GB HBM3", "h100") and not gpu_matches("NVIDIA A10G", "H100")
    assert not gpu_matches("NVIDIA H100 80GB HBM3", "")
    # A version with failed or no parity can only come from outside `sam3ops register`: still refused.
    for tags, fragment in [({"parity": "fail"}, "version 5 failed the parity gate"),
                           ({}, "version 5 has no passing parity result"),
                           ({"parity": "pass", "weights_random": "true"}, "version 5 has RANDOM weights"),
                           ({"parity": "pass", "format": "tensorrt", "gpu_name": "NVIDIA A10G"}, "declare the GPU")]:
        with pytest.raises(PromotionRefusedError, match=fragment):
            check_promotable(tags, version="5", allow_random=False, target_gpu=None)
    check_promotable({"parity": "reference", "weights_random": "false"}, version="5", allow_random=False,
                     target_gpu=None)
    check_promotable({"parity": "pass", "weights_random": "true", "format": "tensorrt", "gpu_name": "NVIDIA A10G"},
                     version="5", allow_random=True, target_gpu="a10g")


def _lock_exists(name: str) -> bool:
    return bool(client().search_registered_models(f"name = '{name}{LOCK_SUFFIX}'"))


@pytest.mark.slow
def test_racing_promotions_leave_one_holder_and_both_records(remote):
    server, sources, name = remote
    first = register(run_id=sources["fp16"], name=name).version
    second = register(run_id=sources["init"], name=name).version
    barrier, results, errors = threading.Barrier(2), {}, []

    def promote_after_barrier(version):
        try:
            barrier.wait()
            results[version] = promote(version=version, name=name, allow_random=True, reason=f"race {version}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote_after_barrier, args=(v,)) for v in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    aliases = client().get_registered_model(name).aliases
    holder = aliases["production"]
    loser = first if holder == second else second
    assert holder in (first, second) and aliases["previous-production"] == loser
    # The lock serialised them: the later promotion saw the earlier one as the holder it replaced.
    assert results[holder].previous == loser and results[loser].previous is None
    assert sorted(r["version"] for r in history(name)) == sorted([first, second])
    assert not _lock_exists(name)


@pytest.mark.slow
def test_promotion_lock_times_out_then_breaks_when_stale(remote, capsys, monkeypatch):
    server, sources, name = remote
    version = register(run_id=sources["fp16"], name=name).version
    mlflow_client = client()
    mlflow_client.create_registered_model(f"{name}{LOCK_SUFFIX}",
                                          tags={"sam3ops.lock": "other", "acquired_at": f"{time.time():.3f}",
                                                "holder": "x@y"})
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "1")
    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--allow-random")
    assert code == 1 and "held its lock for over 1 s" in err
    assert "production" not in mlflow_client.get_registered_model(name).aliases
    mlflow_client.set_registered_model_tag(f"{name}{LOCK_SUFFIX}", "acquired_at", f"{time.time() - 600:.3f}")
    code, _, err = run_cli(capsys, "promote", "--version", version, "--name", name, "--allow-random")
    assert code == 0, err
    assert mlflow_client.get_registered_model(name).aliases == {"production": version} and not _lock_exists(name)
