"""What a benchmark measures: runtimes, precisions, batch sizes and how long to measure each.

:class:`BenchConfig` validates itself on creation (each bad value is a :class:`UsageError` with a
hint) and is saved as JSON beside every result, so a number can always be traced to its settings.
This module imports neither mlflow nor torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sam3ops.errors import UsageError
from sam3ops.inference.options import PRECISIONS
from sam3ops.inference.tuning import TorchOptions

RUNTIMES = ("auto", "torch", "torch-compile", "onnx", "tensorrt", "meta", "aoti")
DEFAULT_BATCHES = (1, 4, 8, 16)
DEFAULT_MAX_RUNS = 20  # `compare`: how many of the newest benchmark runs to read
MAX_BATCH = 1024
# MLflow samples system metrics every 10 s and logs nothing for a run shorter than one interval
# (most benchmarks of the tiny preset): a benchmark run with system metrics samples every second.
SYSTEM_METRICS_INTERVAL_S = 1.0


def parse_batches(text: str | int | list | tuple) -> tuple[int, ...]:
    """``"1,4,8"`` (or an int, or a list) -> ``(1, 4, 8)``; :class:`UsageError` for anything else.

    Duplicates are dropped and the order kept, so ``-P batch=8,8`` measures batch 8 once.
    """
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    batches = []
    for item in items:
        item = str(item).strip()
        try:
            value = int(item)
        except ValueError:
            raise UsageError(f"batch {item!r} is not a whole number",
                             hint="give batch sizes like 8 or 1,4,8,16") from None
        if not 1 <= value <= MAX_BATCH:
            raise UsageError(f"batch {value} is out of range", hint=f"batch sizes go from 1 to {MAX_BATCH}")
        batches.append(value)
    if not batches:
        raise UsageError("no batch size given", hint="give batch sizes like 8 or 1,4,8,16")
    return tuple(dict.fromkeys(batches))


def parse_list(text: str | list | tuple, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """``"fp32,bf16"`` -> ``("fp32", "bf16")``, each checked against ``allowed``."""
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    values = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    for value in values:
        if value not in allowed:
            raise UsageError(f"unknown {what} {value!r}", hint=f"choose from: {', '.join(allowed)}")
    if not values:
        raise UsageError(f"no {what} given", hint=f"choose from: {', '.join(allowed)}")
    return values


@dataclass
class BenchConfig:
    """One benchmark: every (runtime, precision) pair at every batch size.

    Args:
        weights: a local weights folder (safetensors, ONNX graphs or TensorRT engines).
        runtime: ``auto`` picks from the folder: torch for safetensors, onnx for graphs,
            tensorrt for engines, aoti for AOTInductor packages, meta for Meta's layout
            (``sam3.pt``: Meta's own model, its package needed); ``meta`` needs a folder holding
            ``sam3.pt``.
        precisions: torch runs each (meta too, half precision by autocast as Meta does); ONNX
            graphs, engines and AOTInductor packages have theirs fixed at conversion.
        batches: images per call.
        image_size: side of the square photos fed in (real photos resized; the processor then
            resizes them to the model's input like any other picture).
        prompts_per_image: distinct text prompts per image; every call encodes its prompts anew
            (the text cache is cleared), so the text encoder is part of each measured call.
        warmup: calls per batch size before measuring (the first one also compiles or builds).
        iterations: at least this many measured calls per batch size ...
        min_duration_s: ... and at least this long in total.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        parity: also run the fp32 torch reference and report mask IoU against it.
        photos: a folder of photos to use instead of scikit-image's bundled ones.
        system_metrics: also log MLflow's system metrics (``system/cpu_utilization_percentage``,
            memory, GPU through nvidia-ml-py) on the run, sampled every
            :data:`SYSTEM_METRICS_INTERVAL_S` seconds unless ``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``
            says otherwise. Off by default: the sampler shares the CPU with what is measured.
        options: the torch runtime's speed options (:class:`~sam3ops.inference.tuning.TorchOptions`
            fields: attention, compile mode, batched decoder, ...); only those that differ from the
            defaults are kept. The ``torch-compile`` runtime compiles with ``options["compile"]``
            (``default`` unless given).
    """

    weights: str
    runtime: str = "auto"
    precisions: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] = DEFAULT_BATCHES
    image_size: int = 1008
    prompts_per_image: int = 4
    warmup: int = 2
    iterations: int = 10
    min_duration_s: float = 0.0
    device: str = "cpu"
    parity: bool = True
    photos: str | None = None
    system_metrics: bool = False
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.system_metrics, bool):
            raise UsageError(f"system-metrics must be true or false, got {self.system_metrics!r}")
        self.batches = parse_batches(self.batches)
        self.precisions = parse_list(self.precisions, PRECISIONS, "precision")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {self.runtime!r}", hint=f"choose from: {', '.join(RUNTIMES)}")
        for name, low, high in (("image_size", 32, 8192), ("prompts_per_image", 1, 64), ("warmup", 0, 1000),
                                ("iterations", 1, 100_000)):
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                raise UsageError(f"{name.replace('_', '-')} must be a whole number from {low} to {high}, "
                                 f"got {value!r}")
        if not 0 <= self.min_duration_s <= 86_400:
            raise UsageError(f"min-duration must be 0 to 86400 seconds, got {self.min_duration_s}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise UsageError(f"unsupported device {self.device!r}", hint="use cpu, cuda or cuda:N")
        if not isinstance(self.options, dict):
            raise UsageError(f"options must be a mapping of torch options, got {self.options!r}")
        self.options = TorchOptions.parse(self.options).changed()
        if self.runtime == "tensorrt" and not self.device.startswith("cuda"):
            raise UsageError("the tensorrt runtime runs on an NVIDIA GPU only", hint="add --device cuda")

    def torch_options(self, runtime: str) -> TorchOptions:
        """The options a configuration of ``runtime`` runs with (``torch-compile`` compiles)."""
        options = TorchOptions.parse(self.options)
        if runtime == "torch-compile" and options.compile == "off":
            options = TorchOptions.parse({**self.options, "compile": "default"})
        return options

    def to_json(self) -> dict:
        """Plain JSON types (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}
