"""On a GPU host (no mlflow needed): TensorRT engines of the tiny and full presets, built, timed and gated.

    python -m benchmarks.gpu_trt_check --tiny weights/sam3-tiny --processor-dir weights/sam3-full-proc --out $OUT

Needs torch (CUDA), transformers, onnx, onnxscript and tensorrt (the `gpu` extra; TensorRT 11 also
needs onnxconverter-common for fp16). Carry beside the checkout: ``weights/sam3-tiny`` (``sam3ops init
--preset tiny``) and ``weights/sam3-full-proc`` (the full preset's config, processor and tokenizer
files plus ``astronaut.png``), as for ``gpu_convert_check``. Phases, each timed, each written to
``$OUT/gpu_trt_check.json`` as soon as it ends (a timeout still leaves what was done):

1. environment: GPU, driver, torch, CUDA, TensorRT (without TensorRT: says so, checks ONNX Runtime's
   CUDA provider and stops);
2. tiny: ONNX export, readiness, fp16 engines at batch 1/2/4 with a fresh timing cache, the same
   build again (timing-cache reuse), TrtCore through the Segmenter at batch 1 and 3, parity gate;
3. full (unless ``--skip-full``): build the full preset in place, export ONNX (time, peak RSS),
   readiness, engines at 1/8/16 for each ``--precisions``, parity gate, latency per batch.

Then ``python -m pytest tests/convert/tensorrt/test_build.py -m gpu`` runs the GPU tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import traceback
from pathlib import Path

import torch

from benchmarks._gpu_host import write_random_full

PROMPTS = ["person", "cat", "cup", "dog"]  # four distinct prompts per image, as the benchmark's default


class Report:
    """A dict written to disk after every phase."""

    def __init__(self, path: Path):
        self.path, self.data = path, {}
        path.parent.mkdir(parents=True, exist_ok=True)

    def phase(self, name: str, fn):
        started = time.perf_counter()
        try:
            result = {"ok": True, **fn()}
        except Exception as exc:  # noqa: BLE001 - record and go on: the next phase may still tell something
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                      "traceback": traceback.format_exc()[-4000:]}
        result["phase_seconds"] = round(time.perf_counter() - started, 2)
        result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
        self.data[name] = result
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
        print(name, json.dumps(result, default=str)[:1500], flush=True)
        return result


def _environment() -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), capability="{}.{}".format(*torch.cuda.get_device_capability(0)))
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
        info["tensorrt_has_fp16_flag"] = hasattr(tensorrt.BuilderFlag, "FP16")
    except Exception as exc:  # noqa: BLE001
        info["tensorrt"] = f"not available ({type(exc).__name__}: {exc})"
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["onnxruntime_providers"] = onnxruntime.get_available_providers()
    return info


def _latency(segmenter, images, prompts, iterations: int = 10) -> dict:
    for _ in range(2):  # warm-up
        segmenter.segment(images, prompts)
    times = []
    for _ in range(iterations):
        torch.cuda.synchronize()
        started = time.perf_counter()
        segmenter.segment(images, prompts)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": times[len(times) // 2], "min_ms": times[0], "ms_per_image": times[len(times) // 2] / len(images)}


def _engines(source_onnx: Path, out: Path, precision: str, batch, cache: Path) -> dict:
    from sam3ops.convert.tensorrt.build import build_engines

    build = build_engines(source_onnx_dir=source_onnx, output=out, precision=precision, batch=batch,
                          workspace_gb=8, timing_cache=cache, overwrite=True)
    return {"build_seconds": build.build_seconds, "typing": build.typing, "engine_mb": build.bytes_written / 1e6,
            "timing_cache_bytes": cache.stat().st_size, "sidecar": build.sidecar}


def _gate(reference, candidate, images) -> dict:
    from sam3ops.convert import parity

    return parity.check(reference, candidate, images).to_json()


def _tiny(args, work: Path, images) -> dict:
    from sam3ops.convert.onnx.export import export_onnx
    from sam3ops.convert.tensorrt import readiness as trt_readiness
    from sam3ops.inference import Segmenter

    onnx_dir = export_onnx(source=Path(args.tiny), output=work / "tiny-onnx", overwrite=True).output
    cache = work / "tiny-timing.cache"
    cache.unlink(missing_ok=True)
    first = _engines(onnx_dir, work / "tiny-fp16", "fp16", (1, 2, 4), cache)
    again = _engines(onnx_dir, work / "tiny-fp16-again", "fp16", (1, 2, 4), cache)
    engines = Segmenter.from_dir(work / "tiny-fp16", device="cuda", score_threshold=0.0)
    reference = Segmenter.from_dir(Path(args.tiny), device="cuda", score_threshold=0.0)
    three = [images[0], images[1], images[0].rotate(90, expand=True)]
    batches = {str(len(batch)): len(engines.segment(batch, ["person", "cat"])) for batch in (images[:1], three)}
    return {"readiness": trt_readiness.check_folder(onnx_dir).to_json(), "first_build": first,
            "rebuild_with_cache": again, "segment_batches": batches,
            "parity": _gate(reference, Segmenter.from_dir(work / "tiny-fp16", device="cuda"), images),
            "latency_trt": _latency(engines, three, ["person", "cat"]),
            "latency_torch_fp32": _latency(reference, three, ["person", "cat"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", default="weights/sam3-tiny")
    parser.add_argument("--processor-dir", default="weights/sam3-full-proc")
    parser.add_argument("--image", default=None, help="[default: PROCESSOR_DIR/astronaut.png]")
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/sam3ops-gpu-trt")
    parser.add_argument("--precisions", default="fp16", help="full-preset engines to build, e.g. fp16,bf16")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()

    from sam3ops.inference import load_image

    report, work = Report(Path(args.out) / "gpu_trt_check.json"), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = report.phase("environment", _environment)
    if not env.get("cuda_available") or "tensorrt_has_fp16_flag" not in env:
        print("no GPU or no TensorRT here: stopping after the environment phase", flush=True)
        return
    photo = load_image(Path(args.image or Path(args.processor_dir) / "astronaut.png"))
    images = [photo, photo.crop((0, 0, 512, 300))]  # two distinct inputs without scikit-image
    report.phase("tiny", lambda: _tiny(args, work, images))
    if args.skip_full:
        return

    from sam3ops.convert.onnx.export import export_onnx
    from sam3ops.convert.tensorrt import readiness as trt_readiness
    from sam3ops.inference import Segmenter

    def full_onnx() -> dict:
        exported = export_onnx(source=work / "sam3-full", output=work / "full-onnx", overwrite=True)
        return {"onnx_gb": exported.bytes_written / 1e9,
                "readiness": trt_readiness.check_folder(exported.output).to_json()}

    full = work / "sam3-full"
    report.phase("full_weights", lambda: {"path": str(write_random_full(Path(args.processor_dir), full))})
    report.phase("full_onnx", full_onnx)
    reference = Segmenter.from_dir(work / "sam3-full", device="cuda")
    for precision in args.precisions.split(","):
        out = work / f"full-{precision}"
        # Each phase runs at once, inside this iteration: the defaults only pin the loop's values.
        report.phase(f"full_{precision}_build",
                     lambda out=out, precision=precision: _engines(work / "full-onnx", out, precision, (1, 8, 16),
                                                                   work / "full-timing.cache"))
        report.phase(f"full_{precision}_gate", lambda out=out: {
            "parity": _gate(reference, Segmenter.from_dir(out, device="cuda"), images),
            **{f"latency_batch_{b}": _latency(Segmenter.from_dir(out, device="cuda"), [photo] * b, PROMPTS)
               for b in (1, 8)}})
    report.phase("full_torch_latency", lambda: {
        f"bf16_batch_{b}": _latency(Segmenter.from_dir(work / "sam3-full", device="cuda", precision="bf16"),
                                    [photo] * b, PROMPTS) for b in (1, 8)})


if __name__ == "__main__":
    main()
