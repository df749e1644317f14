"""On a GPU host (torch + transformers, no mlflow): build the full preset in place, cast it to fp16
and bf16 with `cast_weights`, and run the fidelity gate on the GPU. Prints and writes JSON.

    python -m benchmarks.gpu_convert_check --processor-dir weights/sam3-full-proc --out $OUT
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks._gpu_host import write_random_full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processor-dir", required=True, help="config, processor, tokenizer files + astronaut.png")
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/sam3ops-gpu-convert")
    parser.add_argument("--device", default="cuda", help="cpu for a dry run (with a tiny config)")
    args = parser.parse_args()
    from sam3ops.convert import cast, parity
    from sam3ops.inference import Segmenter, load_image

    work, proc = Path(args.work), Path(args.processor_dir)
    source = write_random_full(proc, work / "sam3-full", device=args.device)
    photo = load_image(proc / "astronaut.png")
    images = [photo, photo.crop((0, 0, 512, 300))]  # two distinct inputs without scikit-image
    results = {"gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu", "torch": torch.__version__}
    reference = Segmenter.from_dir(source, device=args.device)
    for precision in ("fp16", "bf16"):
        started = time.perf_counter()
        out = cast.cast_weights(source=source, output=work / precision, precision=precision)
        seconds = time.perf_counter() - started
        candidate = Segmenter.from_dir(out.output, device=args.device, precision=precision)
        report = parity.check(reference, candidate, images)
        results[precision] = {"cast_seconds": seconds, "output_gb": out.bytes_written / 1e9, **report.to_json()}
        print(precision, json.dumps(results[precision]), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_convert_check.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
