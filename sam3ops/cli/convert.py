"""``sam3ops convert``: another precision or format of a weights folder, gated on parity with fp32."""

from __future__ import annotations

import click

from sam3ops.cli.options import defaults_of
from sam3ops.convert import config

DEFAULTS = defaults_of(config.ConvertConfig)


@click.command()
@click.option("--input", "input_dir", required=True,
              help="Weights folder to convert (download or init; for tensorrt also an ONNX folder), or Meta's "
                   "checkpoint: a sam3.pt file or a folder in Meta's layout.")
@click.option("--format", "format", required=True, type=click.Choice(config.FORMATS), help="Target format.")
@click.option("--layout", default=DEFAULTS["layout"], show_default=True, type=click.Choice(config.LAYOUTS),
              help="fp32/fp16/bf16: write the transformers layout (config + safetensors) or Meta's (sam3.pt).")
@click.option("--precision", default=config.AUTO, show_default=True, type=click.Choice(config.PRECISION_CHOICES),
              help="onnx: fp32 (auto) or fp16; tensorrt: fp16 (auto), bf16 or fp32; aoti: fp32 (auto), bf16 or fp16; "
                   "fp16/bf16/fp32 formats: their own.")
@click.option("--opset", default=config.DEFAULT_OPSET, show_default=True, type=int,
              help=f"ONNX opset ({config.MIN_OPSET} or newer).")
@click.option("--output", required=True, help="Destination folder (must be empty unless --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUTPUT.")
@click.option("--device", default=DEFAULTS["device"], show_default=True,
              help="Where the parity check runs (tensorrt: always a CUDA device; aoti: also what the packages are "
                   "compiled for).")
@click.option("--min-batch", default=DEFAULTS["min_batch"], show_default=True, type=int,
              help="tensorrt: smallest batch of the profile; aoti: of the compiled range.")
@click.option("--opt-batch", default=DEFAULTS["opt_batch"], show_default=True, type=int,
              help="tensorrt: batch the kernels are tuned for.")
@click.option("--max-batch", default=DEFAULTS["max_batch"], show_default=True, type=int,
              help="tensorrt: largest batch of the profile; aoti: of the compiled range.")
@click.option("--workspace-gb", default=config.DEFAULT_WORKSPACE_GB, show_default=True, type=float,
              help="tensorrt: builder workspace limit.")
@click.option("--timing-cache", default=config.DEFAULT_TIMING_CACHE, show_default=True,
              help="tensorrt: timing cache file, read before and updated after each build.")
@click.option("--reference", default=config.AUTO, show_default=True,
              help="fp32 weights folder for the parity gate (auto: INPUT; give the safetensors folder when INPUT "
                   "holds fp16 ONNX graphs), or a Meta checkpoint (sam3.pt, or a folder holding it): the gate then "
                   "compares with Meta's own model.")
@click.option("--min-mask-iou", default=config.DEFAULT_MIN_MASK_IOU, show_default=True, type=float,
              help="Parity gate: mean mask IoU.")
@click.option("--max-score-diff", default=config.DEFAULT_MAX_SCORE_DIFF, show_default=True, type=float,
              help="Parity gate: largest score difference.")
@click.option("--parity-image", "parity_images", multiple=True, metavar="NAME",
              help="Sample photo for the parity check (repeatable)  "
                   f"[default: {', '.join(config.DEFAULT_PARITY_IMAGES)}]")
@click.option("--parity-prompt", "parity_prompts", multiple=True, metavar="TEXT",
              help="Prompt for the parity check (repeatable)  "
                   f"[default: {', '.join(config.DEFAULT_PARITY_PROMPTS)}]")
def convert(**options) -> None:
    """Convert weights to FORMAT and check the result against the fp32 reference.

    fp16/bf16: a streamed cast of the safetensors (one tensor at a time, read back and checked),
    config, processor and tokenizer carried over. onnx: the vision encoder, text encoder and decoder
    as three graphs with a dynamic batch axis, checked by onnx.checker and shape inference, run by
    ONNX Runtime (predict --weights OUTPUT); --precision fp16 rewrites them to float16. Every ONNX
    conversion is also checked for TensorRT readiness (trt_readiness.json). tensorrt: one engine per
    graph (needs an NVIDIA GPU and the gpu extra), built from INPUT's graphs or from a temporary ONNX
    export of INPUT. aoti: the three parts through torch.export and AOTInductor into .pt2 packages for
    --device over the batch range --min-batch..--max-batch, run without the model's Python code
    (tied to this torch release and device, see aoti.json). Meta's sam3.pt is accepted as INPUT by
    every format; --layout meta writes sam3.pt (+ manifest) for Meta's own package, fp32 (a layout
    change only), fp16 or bf16. The fidelity gate then runs both on real photos: a conversion with
    NaN/Inf or under the gate ends FAILED with tag parity=fail.
    """
    from sam3ops.convert.stage import convert_stage

    # The options are ConvertConfig's fields by name: the stage validates them inside its run.
    result = convert_stage(**options).raise_for_status()
    report = result.outputs
    click.echo(f"{options['input_dir']} -> {options['output']} ({options['format']}): parity pass, mask IoU "
               f"{report.mask_iou_mean:.4f}, max score diff {report.score_max_abs_diff:.4f} over {report.instances} "
               f"instances (run {result.run_id})")


COMMANDS = (convert,)
