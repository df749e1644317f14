"""The CPU path before and after a change, side by side in one run: `Segmenter.segment` on the tiny and
full presets, fp32, each tree in its own process, the two trees measured alternately (A B B A ...).

    python -m benchmarks.cpu_regression --before bfa57a8 --report          # after: this checkout's HEAD
    python -m benchmarks.cpu_regression --before bfa57a8 --after gpu --rounds 2 --full-rounds 1

Both trees are ``git archive`` of a commit unpacked in a temporary folder (no worktree; edits made
to this checkout while it runs do not change what is measured). Each process loads the weights, times one first call
apart, then ``--calls`` calls (text cache cleared each time, so the text encoder runs in each), with
``time.perf_counter``; medians per tree. The host is shared: alternating spreads its load over both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks._measure import ROOT, append_to_report

# Run inside each tree's process: only the public API both trees have.
CHILD = r"""
import json, sys, time
import torch
from PIL import Image
from sam3ops.inference import Segmenter
from sam3ops.predict.samples import sample_image
weights, calls, prompts = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
photo = sample_image("astronaut").resize((1008, 1008), Image.Resampling.BILINEAR)
started = time.perf_counter()
seg = Segmenter.from_dir(weights)
load_s = time.perf_counter() - started
def call():
    seg.clear_text_cache()
    started, cpu = time.perf_counter(), time.process_time()
    seg.segment([photo], prompts)
    return time.perf_counter() - started, time.process_time() - cpu
first_s = call()[0]
timed = [call() for _ in range(calls)]
print(json.dumps({"load_s": load_s, "first_s": first_s, "calls_s": [wall for wall, _ in timed],
                  "cpu_s": [cpu for _, cpu in timed], "threads": torch.get_num_threads()}))
"""


def unpack(commit: str, into: Path) -> Path:
    """The tracked files of ``commit`` in ``into`` (``git archive``); returns ``into``."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def measure(tree: Path, weights: Path, calls: int, prompts: str) -> dict:
    """One process of ``tree`` on ``weights``: load, first call, ``calls`` timed calls."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(weights), str(calls), prompts], env=env, cwd=tree,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the {tree.name} tree failed on {weights}:\n{out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(trees: dict[str, Path], weights: Path, *, rounds: int, calls: int, prompts: str) -> dict:
    """Alternate the trees ``rounds`` times (order flipped every round); every call's seconds per tree."""
    seen = {name: {"calls_s": [], "cpu_s": [], "load_s": [], "first_s": [], "loadavg": []} for name in trees}
    names = list(trees)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            result = measure(trees[name], weights, calls, prompts)
            for key in ("load_s", "first_s"):
                seen[name][key].append(result[key])
            seen[name]["calls_s"] += result["calls_s"]
            seen[name]["cpu_s"] += result["cpu_s"]
            seen[name]["loadavg"].append(os.getloadavg()[0])
            print(f"round {r + 1} {name}: {[round(s * 1000) for s in result['calls_s']]} ms", flush=True)
    return seen


def ratio(entry: dict, key: str, statistic) -> str:
    """after / before of ``statistic`` over one measure of both trees, in bold."""
    values = {name: statistic(seen[key]) for name, seen in entry["trees"].items()}
    return f"**{values['after'] / values['before']:.3f}**"


def section(results: dict, before: str, after: str) -> str:
    lines = [f"## CPU path before and after — {dt.date.today().isoformat()}, before {before}, after {after}", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work), no GPU; "
             f"Python {platform.python_version()}. `Segmenter.segment`, 1 photo (1008 px), fp32, text cache "
             "cleared each call; each tree in its own process, trees alternated (A B B A). Wall time is what a "
             "user waits; CPU ms (the process's user + system time per call) is far less sensitive to other "
             "work on a shared host, and the ratio to trust when the load average is high.", "",
             "| preset | prompts | tree | calls | median ms | min ms | max ms | median CPU ms | first call s "
             "| load s | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for preset, entry in results.items():
        for name, seen in entry["trees"].items():
            ms = [s * 1000 for s in seen["calls_s"]]
            lines.append(f"| {preset} | {entry['prompts']} | {name} | {len(ms)} | {statistics.median(ms):.0f} "
                         f"| {min(ms):.0f} | {max(ms):.0f} | {statistics.median(seen['cpu_s']) * 1000:.0f} "
                         f"| {statistics.median(seen['first_s']):.1f} "
                         f"| {statistics.median(seen['load_s']):.1f} "
                         f"| {min(seen['loadavg']):.1f}-{max(seen['loadavg']):.1f} |")
        lines.append(f"| {preset} | | after / before | | {ratio(entry, 'calls_s', statistics.median)} "
                     f"| {ratio(entry, 'calls_s', min)} | | {ratio(entry, 'cpu_s', statistics.median)} | | | |")
    return "\n".join(lines) + "\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="bfa57a8", help="the commit to compare with")
    parser.add_argument("--after", default="HEAD", help="the commit of the change")
    parser.add_argument("--tiny", default="weights/sam3-tiny", help="tiny preset weights (made when missing)")
    parser.add_argument("--full", default="/tmp/sam3ops-cpu-regression/sam3-full", help="full preset weights")
    parser.add_argument("--rounds", type=int, default=4, help="alternations on the tiny preset (0: skip)")
    parser.add_argument("--calls", type=int, default=10, help="timed calls per process, tiny preset")
    parser.add_argument("--full-rounds", type=int, default=2, help="alternations on the full preset (0: skip)")
    parser.add_argument("--full-calls", type=int, default=2)
    parser.add_argument("--json", help="write every measured call here")
    parser.add_argument("--report", action="store_true", help="append a section to benchmarks/REPORT.md")
    args = parser.parse_args()
    from sam3ops.weights.presets import init_weights

    after = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.after], check=True,
                           capture_output=True, text=True).stdout.strip()
    presets = {}
    if args.rounds:
        presets["tiny"] = (Path(args.tiny).resolve(), args.rounds, args.calls, "person,cat,cup,dog")
    if args.full_rounds:
        presets["full"] = (Path(args.full).resolve(), args.full_rounds, args.full_calls, "person")
    results = {}
    with tempfile.TemporaryDirectory(prefix="sam3ops-before-") as tmp:
        (Path(tmp) / "before").mkdir()
        (Path(tmp) / "after").mkdir()
        trees = {"before": unpack(args.before, Path(tmp) / "before"), "after": unpack(after, Path(tmp) / "after")}
        for preset, (weights, rounds, calls, prompts) in presets.items():
            if not (weights / "manifest.json").is_file():
                init_weights(preset=preset, output=weights, seed=0)
            results[preset] = {"prompts": len(prompts.split(",")),
                               "trees": compare(trees, weights, rounds=rounds, calls=calls, prompts=prompts)}
            if args.json:  # after each preset: a long run interrupted keeps the presets done
                Path(args.json).write_text(json.dumps(results, indent=2))
    text = section(results, args.before, after)
    print(text)
    if args.report:
        append_to_report(text)


if __name__ == "__main__":
    main()
