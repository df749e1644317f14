"""The ``sam3ops`` command line: a thin click layer over the library.

Each command parses its options, opens the stage's MLflow run, calls one library function and
prints the result. Errors are caught once in :func:`main`: a user error prints one line on stderr
with a hint and exits non-zero; the full traceback only with ``SAM3OPS_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import click

import sam3ops
from sam3ops.errors import Sam3opsError
from sam3ops.inference.images import DEFAULT_MAX_PIXELS
from sam3ops.tracking import redact

DEBUG_ENV = "SAM3OPS_DEBUG"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _setup_logging() -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(redact.RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("sam3ops").setLevel(logging.INFO)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(sam3ops.__version__, prog_name="sam3ops")
def cli() -> None:
    """sam3ops: take SAM3 from a hub checkpoint to a production backend, tracked in MLflow.

    Runs go to MLFLOW_TRACKING_URI, or to the embedded store mlflow.db at the workspace root
    (open it with `mlflow ui --backend-store-uri sqlite:///mlflow.db`).
    """


@cli.command()
@click.option("--repo-id", default="facebook/sam3", show_default=True, help="Hub repo to download.")
@click.option("--revision", default="main", show_default=True, help="Branch, tag or commit sha.")
@click.option("--output", default="weights/sam3", show_default=True, type=click.Path(path_type=Path),
              help="Destination folder (laid out like the repo, plus manifest.json).")
@click.option("--include", default="transformers", show_default=True,
              type=click.Choice(["transformers", "pt", "all"]),
              help="transformers: config, processor, tokenizer, safetensors; pt: adds sam3.pt; all: every file.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Hugging Face token. Prefer HF_TOKEN or `hf auth login`: an option is visible to other users "
                   "of this machine. Never logged.")
def download(repo_id: str, revision: str, output: Path, include: str, token: str | None) -> None:
    """Download SAM3 weights from the Hugging Face hub into OUTPUT, verified and tracked.

    The revision is pinned to its commit sha; every file is checked against the hub's sha256;
    files already intact are kept and partial ones resume. Set HF_HUB_DISABLE_PROGRESS_BARS=1
    to turn the progress bars off.
    """
    from sam3ops.weights.stage import download_stage

    redact.register(token)
    result, run_id = download_stage(repo_id=repo_id, revision=revision, output=str(output), include=include,
                                    token=token)
    click.echo(
        f"{repo_id}@{result.manifest.commit[:12]} -> {output}: {len(result.fetched)} of "
        f"{len(result.manifest.files)} files fetched, {result.bytes_downloaded / 1e6:.1f} MB in "
        f"{result.seconds:.1f} s (run {run_id})"
    )


@cli.command()
@click.option("--preset", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
              help="tiny: a few MB at 224 px, for tests and the CPU demo; full: the real ~840 M-parameter SAM3.")
@click.option("--output", default="auto", show_default=True,
              help="Destination folder; auto means weights/sam3-<preset>.")
@click.option("--seed", default=0, show_default=True, type=int, help="The same seed gives the same weights.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it holds something else.")
def init(preset: str, output: str, seed: int, force: bool) -> None:
    """Write an architecture-true SAM3 checkpoint with RANDOM weights.

    Same layout as `download` (config, safetensors, processor, tokenizer, manifest.json), marked
    random in the manifest and the run, so every later stage can run before access to the real
    weights is granted. Its masks mean nothing.
    """
    from sam3ops.weights.stage import init_stage

    result, run_id = init_stage(preset=preset, output=output, seed=seed, force=force)
    verb = "already holds" if result.reused else "now holds"
    click.echo(
        f"{result.output} {verb} the {preset} preset with RANDOM weights (seed {seed}, commit "
        f"{result.manifest.commit[:12]}) (run {run_id})"
    )


@cli.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--weights", default="weights/sam3", show_default=True, help="Weights folder (download or init).")
@click.option("--prompt", "prompt_texts", multiple=True, metavar="TEXT", help="A text prompt (repeatable).")
@click.option("--prompt-set", "prompt_sets", multiple=True, metavar="NAME",
              help="A set from prompts/default_prompts.json (repeatable; `sam3ops prompts` lists them).")
@click.option("--output", default="predictions", show_default=True, help="Folder for the results.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "fp16", "bf16"]))
@click.option("--compile/--no-compile", "compile_model", default=False, show_default=True,
              help="torch.compile the encoders (slow first call, faster after).")
@click.option("--score-threshold", default=0.5, show_default=True, type=float,
              help="Keep instances scoring above this (query score x presence score).")
@click.option("--mask-threshold", default=0.5, show_default=True, type=float, help="Binarise masks above this.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, type=int,
              help="Refuse images with more pixels (decompression-bomb guard).")
def predict(images, weights, prompt_texts, prompt_sets, output, device, precision, compile_model,
            score_threshold, mask_threshold, max_pixels) -> None:
    """Segment IMAGES (files, folders or globs) with text prompts; write masks, JSON, overlays, pages.

    Per image, under OUTPUT/<name>/: result.json (labels, scores, boxes, areas), masks.png (16-bit
    instance label map), masks_rle.json (COCO RLE), overlay.png and page.html (interactive, offline).
    A bad image is reported and skipped; the exit code is 0 only when every image succeeded.
    """
    from sam3ops.predict.stage import predict_stage

    summary, run_id, manifest = predict_stage(
        images=list(images), weights=weights, prompt_texts=list(prompt_texts), prompt_sets=list(prompt_sets),
        output=output, device=device, precision=precision, compile_model=compile_model,
        score_threshold=score_threshold, mask_threshold=mask_threshold, max_pixels=max_pixels)
    random_note = " (RANDOM weights: the masks mean nothing)" if manifest and manifest.random else ""
    click.echo(f"{len(summary.succeeded)} images, {sum(summary.instances_per_prompt().values())} instances "
               f"-> {output}{random_note} (run {run_id})")


@cli.command()
@click.option("--input", "input_dir", required=True,
              help="Weights folder to convert (download or init); for tensorrt also an ONNX folder.")
@click.option("--format", "fmt", required=True, type=click.Choice(["fp16", "bf16", "onnx", "tensorrt"]),
              help="Target format.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="onnx: fp32 (auto) or fp16; tensorrt: fp16 (auto), bf16 or fp32; fp16/bf16 formats: their own.")
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset (17 or newer).")
@click.option("--output", required=True, help="Destination folder (must be empty unless --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUTPUT.")
@click.option("--device", default="cpu", show_default=True,
              help="Where the parity check runs (tensorrt: always a CUDA device).")
@click.option("--min-batch", default=1, show_default=True, type=int, help="tensorrt: smallest batch of the profile.")
@click.option("--opt-batch", default=8, show_default=True, type=int, help="tensorrt: batch the kernels are tuned for.")
@click.option("--max-batch", default=16, show_default=True, type=int, help="tensorrt: largest batch of the profile.")
@click.option("--workspace-gb", default=8.0, show_default=True, type=float, help="tensorrt: builder workspace limit.")
@click.option("--timing-cache", default="weights/trt-timing.cache", show_default=True,
              help="tensorrt: timing cache file, read before and updated after each build.")
@click.option("--reference", default="auto", show_default=True,
              help="fp32 weights folder for the parity gate (auto: INPUT; give the safetensors folder when INPUT "
                   "holds fp16 ONNX graphs).")
@click.option("--min-mask-iou", default=0.98, show_default=True, type=float, help="Parity gate: mean mask IoU.")
@click.option("--max-score-diff", default=0.02, show_default=True, type=float,
              help="Parity gate: largest score difference.")
@click.option("--parity-image", "parity_images", multiple=True, metavar="NAME",
              help="Sample photo for the parity check (repeatable)  [default: astronaut, chelsea]")
@click.option("--parity-prompt", "parity_prompts", multiple=True, metavar="TEXT",
              help="Prompt for the parity check (repeatable)  [default: person, cat, cup]")
def convert(input_dir, fmt, precision, opset, output, overwrite, device, min_batch, opt_batch, max_batch,
            workspace_gb, timing_cache, reference, min_mask_iou, max_score_diff, parity_images, parity_prompts) -> None:
    """Convert weights to FORMAT and check the result against the fp32 reference.

    fp16/bf16: a streamed cast of the safetensors (one tensor at a time, read back and checked),
    config, processor and tokenizer carried over. onnx: the vision encoder, text encoder and decoder
    as three graphs with a dynamic batch axis, checked by onnx.checker and shape inference, run by
    ONNX Runtime (predict --weights OUTPUT); --precision fp16 rewrites them to float16. Every ONNX
    conversion is also checked for TensorRT readiness (trt_readiness.json). tensorrt: one engine per
    graph (needs an NVIDIA GPU and the gpu extra), built from INPUT's graphs or from a temporary ONNX
    export of INPUT. The fidelity gate then runs both on real photos: a conversion with NaN/Inf or
    under the gate ends FAILED with tag parity=fail.
    """
    from sam3ops.convert.stage import convert_stage

    report, run_id = convert_stage(input_dir=input_dir, format=fmt, output=output, overwrite=overwrite,
                                   device=device, min_mask_iou=min_mask_iou, max_score_diff=max_score_diff,
                                   parity_images=list(parity_images), parity_prompts=list(parity_prompts),
                                   opset=opset, precision=precision, batch=(min_batch, opt_batch, max_batch),
                                   workspace_gb=workspace_gb, timing_cache=timing_cache,
                                   reference=None if reference == "auto" else reference)
    click.echo(f"{input_dir} -> {output} ({fmt}): parity pass, mask IoU {report.mask_iou_mean:.4f}, "
               f"max score diff {report.score_max_abs_diff:.4f} over {report.instances} instances (run {run_id})")


@cli.command()
@click.option("--weights", default="weights/sam3", show_default=True,
              help="Real weights to use when this folder holds a verified download.")
@click.option("--preset", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
              help="Random-weights preset to use otherwise.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--image", "images", multiple=True, help="Input for predict (repeatable)  [default: sample photos]")
@click.option("--prompt-set", "prompt_sets", multiple=True, default=["single_objects"], show_default=True)
@click.option("--output", default="predictions", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--formats", default="auto", show_default=True,
              help="Conversions: auto (fp16,onnx; + tensorrt on a GPU with TensorRT) or a list like fp16,bf16,onnx.")
@click.option("--batch", default="1,4", show_default=True, help="Batch sizes every artifact is benchmarked at.")
@click.option("--iterations", default=5, show_default=True, type=int, help="Measured calls per batch size.")
@click.option("--policy", default="latency@1", show_default=True,
              help="Which version is promoted: latency@N (ms per image at batch N) or throughput.")
@click.option("--model-name", default="sam3", show_default=True, help="Registered model for the versions.")
@click.option("--alias", default="production", show_default=True, help="Alias the fastest version gets.")
def pipeline(weights, preset, seed, images, prompt_sets, output, device, formats, batch, iterations, policy,
             model_name, alias) -> None:
    """The main job: weights -> predict -> convert -> benchmark -> register -> promote.

    One parent run with a child run per stage; a stage whose inputs and parameters match an earlier
    finished run is reused. Random weights (no download) are promoted too, tagged weights_random=true.
    """
    from sam3ops.pipeline import run_pipeline
    from sam3ops.tracking import is_embedded, tracking_uri

    result = run_pipeline(weights=weights, preset=preset, seed=seed, images=list(images),
                          prompt_sets=list(prompt_sets), output=output, device=device, formats=formats, batch=batch,
                          iterations=iterations, policy=policy, model_name=model_name, alias=alias)
    kind = "RANDOM" if result.weights_random else "real"
    uri = tracking_uri()
    ui = f"mlflow ui --backend-store-uri {uri}  (then http://127.0.0.1:5000)" if is_embedded(uri) else uri
    click.echo(result.table())
    production = f"models:/{model_name}@{alias} -> version {result.production}" if result.production else "none"
    click.echo(f"\nweights     {result.weights} ({kind})\npredict     {result.images_ok} images, {result.instances} "
               f"instances -> {result.predictions}\n{alias:<11} {production}\nrun         {result.run_id}\n"
               f"ui          {ui}")


@cli.command()
@click.option("--output", default="samples", show_default=True, help="Folder for the photos.")
def samples(output: str) -> None:
    """Write real sample photos (scikit-image's astronaut, chelsea, coffee, motorcycle) as PNG files."""
    from sam3ops.predict.samples import write_samples

    for path in write_samples(Path(output)):
        click.echo(str(path))


@cli.command("prompts")
@click.option("--file", "path", default=None, type=click.Path(path_type=Path),
              help="Prompt-set file  [default: prompts/default_prompts.json]")
def prompts_cmd(path: Path | None) -> None:
    """List the prompt sets and their prompts (validates the file)."""
    from sam3ops.predict.prompts import load_prompt_sets

    for name, prompts in load_prompt_sets(path).items():
        click.echo(f"{name}: {', '.join(prompts)}")


@cli.command()
@click.option("--weights", default="weights/sam3", show_default=True,
              help="A weights folder, runs:/RUN/weights, or models:/sam3@production.")
@click.option("--runtime", default="auto", show_default=True,
              help="auto, torch, torch-compile, onnx or tensorrt (auto: from what WEIGHTS holds).")
@click.option("--precision", default="fp32", show_default=True,
              help="fp32, fp16, bf16, or several: fp32,bf16 (torch; ONNX and engines fix theirs).")
@click.option("--batch", default="1,4,8,16", show_default=True, help="Batch size, or a sweep: 1,4,8,16.")
@click.option("--image-size", default="1008", show_default=True, help="Side of the square input photos.")
@click.option("--prompts-per-image", default="4", show_default=True, help="Distinct text prompts per image.")
@click.option("--warmup", default="2", show_default=True, help="Unmeasured calls per batch size.")
@click.option("--iterations", default="10", show_default=True, help="At least this many measured calls ...")
@click.option("--min-duration", default="0", show_default=True, help="... and at least this many seconds.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--reference", default=None,
              help="fp32 safetensors for the accuracy check of ONNX graphs or engines  [default: WEIGHTS]")
@click.option("--parity/--no-parity", default=True, show_default=True,
              help="Report mask IoU against fp32 torch on the same inputs.")
@click.option("--photos", default=None, help="A folder of photos to use  [default: scikit-image's sample photos]")
@click.option("--output-json", default=None, help="Also write the results here as JSON.")
@click.option("--from-json", "from_json", default=None,
              help="Log results measured elsewhere (a JSON from --output-json) instead of measuring.")
def bench(weights, runtime, precision, batch, image_size, prompts_per_image, warmup, iterations, min_duration,
          device, reference, parity, photos, output_json, from_json) -> None:
    """Benchmark latency, throughput, memory and accuracy per runtime, precision and batch size.

    Warm-up excluded; CUDA events on a GPU, perf_counter on the CPU; real photos rotated; each
    call encodes its prompts. Metrics are logged with step = batch size (experiment sam3-benchmark).
    """
    from sam3ops.bench.stage import bench_stage, log_results_stage

    if from_json:
        results, run_id = log_results_stage(path=from_json)
    else:
        results, run_id = bench_stage(
            weights=weights, runtime=runtime, precision=precision, batch=batch,
            image_size=_whole(image_size, "--image-size"), prompts_per_image=_whole(prompts_per_image,
                                                                                     "--prompts-per-image"),
            warmup=_whole(warmup, "--warmup"), iterations=_whole(iterations, "--iterations"),
            min_duration_s=_number(min_duration, "--min-duration"), device=device, reference=reference,
            parity=parity, photos=photos, output_json=output_json)
    _print_bench_table(results)
    click.echo(f"run {run_id}")


def _whole(text: str, option: str) -> int:
    from sam3ops.errors import UsageError

    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a whole number") from None


def _number(text: str, option: str) -> float:
    from sam3ops.errors import UsageError

    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a number") from None


def _print_bench_table(results) -> None:
    import pandas as pd

    columns = ["runtime", "precision", "batch", "status", "latency_p50_ms", "latency_p99_ms", "ms_per_image",
               "throughput_img_s", "vram_peak_mb", "host_rss_peak_mb", "parity_mask_iou"]
    frame = pd.DataFrame(results.rows())
    click.echo(frame[[c for c in columns if c in frame]].to_string(index=False, float_format=lambda v: f"{v:.2f}"))


@cli.command()
@click.option("--experiment", default="sam3-benchmark", show_default=True, help="Experiment to read.")
@click.option("--run-id", "run_ids", multiple=True, help="Compare these runs (repeatable)  [default: the newest]")
@click.option("--max-runs", default=20, show_default=True, type=int, help="How many of the newest runs to read.")
@click.option("--output", default="benchmark_comparison.html", show_default=True,
              help="Where to write the comparison charts (offline HTML).")
def compare(experiment, run_ids, max_runs, output) -> None:
    """Compare benchmark runs from the tracking server: a table, and charts against batch size."""
    from sam3ops.bench.compare import comparison_page, load_runs

    frame = load_runs(experiment=experiment, run_ids=list(run_ids), max_runs=max_runs)
    shown = [c for c in ("run_name", "runtime", "precision", "device", "batch", "latency_p50_ms", "ms_per_image",
                         "throughput_img_s", "vram_peak_mb", "parity_mask_iou") if c in frame]
    click.echo(frame[shown].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    Path(output).write_text(comparison_page(frame), encoding="utf-8")
    click.echo(f"charts -> {output}")


def _optional_bool(name: str, help: str):
    """``--NAME`` alone means true; ``--NAME true|false`` also works (MLproject passes a value)."""
    return click.option(name, type=click.BOOL, default=False, is_flag=False, flag_value=True, show_default=True,
                        metavar="[BOOL]", help=help)


@cli.command()
@click.option("--run-id", required=True, help="A convert run (or a download/init run: the source checkpoint).")
@click.option("--name", default="sam3", show_default=True, help="Registered model name.")
def register(run_id: str, name: str) -> None:
    """Register what RUN produced as a new version of the model (an MLflow pyfunc with the raw files inside).

    Version tags: format, precision, parity, weights_commit, weights_random (+ TensorRT version, GPU and
    compute capability for engines, bench.* from the latest benchmark of the artifact). A conversion
    that failed parity is refused. Registering the same run again returns its version.
    """
    from sam3ops.registry import register as register_run

    result = register_run(run_id=run_id, name=name)
    tags = result.tags
    what = f"{tags.get('format')}, precision {tags.get('precision')}, parity {tags.get('parity')}"
    if tags.get("weights_random") == "true":
        what += ", RANDOM weights"
    if result.reused:
        click.echo(f"run {run_id} is already {name} version {result.version} ({what})")
    else:
        click.echo(f"run {run_id} -> {name} version {result.version} ({what}) (run {result.register_run_id})")


@cli.command()
@click.option("--version", "version", required=True, help="The version to promote.")
@click.option("--alias", default="production", show_default=True, help="The alias to point at it.")
@click.option("--name", default="sam3", show_default=True, help="Registered model name.")
@_optional_bool("--allow-random", "Promote a version with RANDOM weights (tests and demos).")
@click.option("--target-gpu", default="", help="The GPU the backend runs on; required for TensorRT engines "
                                                "(a part of the name is enough, e.g. H100).")
@click.option("--reason", default="", help="Why: recorded with who and when.")
def promote(version, alias, name, allow_random, target_gpu, reason) -> None:
    """Point ALIAS (default production) at VERSION; the previous holder keeps previous-ALIAS.

    Refused: failed parity, random weights (unless --allow-random), an engine built for another GPU
    than --target-gpu. Concurrent promotions of one model take turns (a lock in the registry).
    """
    from sam3ops.registry import promote as promote_version

    result = promote_version(version=version, name=name, alias=alias, allow_random=allow_random,
                             target_gpu=target_gpu or None, reason=reason)
    _echo_alias_move(result)


@cli.command()
@click.option("--alias", default="production", show_default=True)
@click.option("--name", default="sam3", show_default=True, help="Registered model name.")
@click.option("--reason", default="", help="Why: recorded with who and when.")
def rollback(alias, name, reason) -> None:
    """Give ALIAS back to the version holding previous-ALIAS (the two swap: a second rollback undoes it)."""
    from sam3ops.registry import rollback as rollback_alias

    _echo_alias_move(rollback_alias(name=name, alias=alias, reason=reason))


def _echo_alias_move(result) -> None:
    if result.action == "unchanged":
        click.echo(f"{result.name}@{result.alias} already is version {result.version}: nothing changed")
        return
    was = f"was {result.previous}, now {result.name}@previous-{result.alias}" if result.previous else "was unset"
    click.echo(f"{result.name}@{result.alias} -> version {result.version} ({result.action}; {was}) "
               f"(run {result.run_id})")


@cli.command()
@click.option("--alias", default=None, help="Pull the version holding this alias  [default: production]")
@click.option("--version", "version", default=None, help="Pull this version instead of an alias.")
@click.option("--name", default="sam3", show_default=True, help="Registered model name.")
@click.option("--dest", required=True, type=click.Path(path_type=Path),
              help="Folder to fill (an earlier pull there is replaced; anything else is refused).")
@_optional_bool("--force", "Take a TensorRT engine built for another GPU or TensorRT version.")
def pull(alias, version, name, dest, force) -> None:
    """Download a registered version's files into DEST, each checked against the version's sha256s.

    Writes MODEL_INFO.json (name, version, alias, format, precision, sha256s). DEST appears whole or
    not at all; an interrupted pull resumes on the next run. Load it with
    `Segmenter.from_dir(DEST)` or `sam3ops predict --weights DEST`.
    """
    from sam3ops.registry import pull as pull_version

    if alias and version:
        raise click.UsageError("give --alias or --version, not both")
    result = pull_version(dest=dest, name=name, version=version, alias=alias, force=force)
    for problem in result.forced:
        click.echo(f"warning: --force: {problem}", err=True)
    if result.up_to_date:
        click.echo(f"{dest} already holds {name} version {result.version} ({result.format}), verified")
    else:
        click.echo(f"{name} version {result.version} ({result.format}, {result.precision}) -> {dest}: "
                   f"{len(result.files)} files, {result.bytes_fetched / 1e6:.1f} MB fetched in {result.seconds:.1f} s, "
                   "sha256 verified")


@cli.command()
@click.option("--name", default="sam3", show_default=True, help="Registered model name.")
def versions(name) -> None:
    """List the versions of the model: aliases, format, precision, parity, random flag, source run."""
    from sam3ops.registry import list_versions

    for v in list_versions(name):
        tags = v.tags
        aliases = ",".join(v.aliases) or "-"
        click.echo(f"{v.version:>4}  {aliases:<30} {tags.get('format', '?'):<9} {tags.get('precision', '?'):<5} "
                   f"parity={tags.get('parity', '?'):<9} random={tags.get('weights_random', '?'):<5} "
                   f"run={tags.get('source_run_id', '?')}")


def _raise_on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    # Turn SIGTERM into an exception so the run helper ends the run instead of leaving it RUNNING.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    _setup_logging()
    redact.register_environment()
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        cli.main(args=argv, prog_name="sam3ops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("sam3ops: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("sam3ops: interrupted", err=True)
        sys.exit(130)
    except Sam3opsError as exc:
        _print_error(exc, exc.one_line())
        sys.exit(exc.exit_code)
    except Exception as exc:  # anything else is our bug or the environment's: still one line
        from sam3ops.errors import tracking_error

        if translated := tracking_error(exc):
            _print_error(exc, translated.one_line())
            sys.exit(translated.exit_code)
        _print_error(exc, f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        sys.exit(1)


def _print_error(exc: BaseException, line: str) -> None:
    if os.environ.get(DEBUG_ENV):
        click.echo(redact.redact("".join(traceback.format_exception(exc))), err=True)
    click.echo(f"sam3ops: error: {redact.redact(' '.join(line.split()))}", err=True)
