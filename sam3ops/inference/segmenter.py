"""Text-prompted segmentation on any model core: pre-processing, prompt cache, post-processing.

The processor saved with the weights (``Sam3Processor``) resizes and normalises images, tokenizes
prompts and turns raw outputs into thresholded masks at the original size; the model core
(:mod:`sam3ops.inference.core`) runs the network. One image with N prompts runs the vision encoder
once, each distinct prompt's text encoder once (cached), and the decoder N times.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sam3ops.checkpoint.kinds import check_weights_dir, is_aoti_dir, is_engine_dir, is_onnx_dir
from sam3ops.errors import PromptsError, UsageError
from sam3ops.inference.core import ModelCore, Outputs, TorchCore
from sam3ops.inference.device import resolve_device, resolve_precision
from sam3ops.inference.result import Result

log = logging.getLogger(__name__)

STAGES = ("preprocess", "vision", "text", "decoder", "postprocess")


@dataclass
class Timings:
    """Seconds spent per stage, summed over calls (CUDA work synchronised before reading a clock)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per call of each stage that ran."""
        return {stage: 1000 * self.seconds[stage] / self.calls[stage] for stage in STAGES if self.calls[stage]}


class Segmenter:
    """SAM3 text-prompted instance segmentation over a model core.

    Args:
        core: the runtime (``TorchCore``, or the ONNX / TensorRT cores of the convert stage).
        processor: the ``Sam3Processor`` saved with the weights.
        score_threshold: keep instances whose score (query score x presence) is above this.
        mask_threshold: binarise mask probabilities above this.
        decode_batch: (image, prompt) pairs per decoder call.
    """

    def __init__(self, core: ModelCore, processor, *, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                 decode_batch: int = 8):
        for name, value in (("score_threshold", score_threshold), ("mask_threshold", mask_threshold)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be between 0 and 1, got {value}")
        if decode_batch < 1:
            raise UsageError(f"decode_batch must be at least 1, got {decode_batch}")
        self.core, self.processor = core, processor
        self.score_threshold, self.mask_threshold, self.decode_batch = score_threshold, mask_threshold, decode_batch
        self.context_length = processor.tokenizer.model_max_length
        self.timings = Timings()
        self.warnings: list[str] = []
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_dir(cls, weights_dir: Path, *, device: str = "cpu", precision: str = "fp32", compile: bool = False,
                 force: bool = False, **kwargs) -> Segmenter:
        """Load the weights and processor of ``weights_dir`` on ``device`` in ``precision``.

        A folder of safetensors runs on the PyTorch core; a folder of ONNX graphs on ONNX Runtime
        (``precision`` and ``compile`` do not apply there: the graphs fix them); a folder of
        TensorRT engines on TensorRT (``device`` must be ``cuda``); a folder of AOTInductor packages
        on their compiled code (``device`` of the type they were compiled for; ``force`` runs
        packages of another torch release, GPU or CPU instruction set anyway).

        Raises:
            WeightsError: the folder is missing or incomplete.
            UsageError: unknown precision, or CUDA requested without a GPU.
            ServingError: AOTInductor packages compiled elsewhere (see ``AotiCore``), unless ``force``.
        """
        from transformers import Sam3Model, Sam3Processor

        weights_dir = check_weights_dir(weights_dir)
        torch_device, dtype = resolve_device(device), resolve_precision(precision)
        processor = Sam3Processor.from_pretrained(weights_dir)
        if is_onnx_dir(weights_dir):
            from sam3ops.inference.onnx_core import OnnxCore

            return cls(OnnxCore(weights_dir, device=device), processor, **kwargs)
        if is_engine_dir(weights_dir):
            from sam3ops.inference.trt_core import TrtCore

            return cls(TrtCore(weights_dir, device=device), processor, **kwargs)
        if is_aoti_dir(weights_dir):
            from sam3ops.inference.aoti_core import AotiCore

            return cls(AotiCore(weights_dir, device=device, force=force), processor, **kwargs)
        model = Sam3Model.from_pretrained(weights_dir, dtype=dtype).to(torch_device)
        return cls(TorchCore(model, compile=compile), processor, **kwargs)

    @contextlib.contextmanager
    def _timed(self, stage: str):
        def sync():
            if self.core.device.type == "cuda":
                torch.cuda.synchronize(self.core.device)

        sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            sync()
            self.timings.seconds[stage] += time.perf_counter() - started
            self.timings.calls[stage] += 1

    def _tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokenizer = self.processor.tokenizer
        for prompt, ids in zip(prompts, tokenizer(prompts, verbose=False).input_ids):
            if len(ids) > self.context_length:
                shown = prompt if len(prompt) <= 40 else prompt[:40] + "..."
                message = (f"prompt {shown!r} is {len(ids)} tokens; SAM3 reads {self.context_length}"
                           " (start and end included), the rest is cut off")
                log.warning(message)
                self.warnings.append(message)
        encoded = tokenizer(prompts, padding="max_length", truncation=True, max_length=self.context_length,
                            return_tensors="pt")
        return encoded.input_ids, encoded.attention_mask

    def clear_text_cache(self) -> None:
        """Forget every encoded prompt (the benchmark does, so each call runs the text encoder)."""
        self._text_cache.clear()

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text features and attention masks for ``prompts``; each distinct prompt is encoded once ever."""
        from sam3ops.inference.prompts import validate_prompt

        prompts = [validate_prompt(p) for p in prompts]
        if new := [p for p in dict.fromkeys(prompts) if p not in self._text_cache]:
            input_ids, attention_mask = self._tokenize(new)
            with self._timed("text"):
                features = self.core.encode_text(input_ids, attention_mask)
            for i, prompt in enumerate(new):
                self._text_cache[prompt] = (features[i], attention_mask[i].to(features.device))
        features = torch.stack([self._text_cache[p][0] for p in prompts])
        masks = torch.stack([self._text_cache[p][1] for p in prompts])
        return features, masks

    def segment(self, images: list, prompts: list[str], *, names: list[str] | None = None) -> list[Result]:
        """Segment every prompt in every image.

        Args:
            images: RGB PIL images (see :func:`sam3ops.inference.images.load_image`).
            prompts: text prompts; blank ones are refused, long ones truncated with a warning.
            names: a name per image for the results (default: their index).

        Returns:
            One :class:`Result` per image, in order.
        """
        from sam3ops.inference.prompts import clean_prompts

        if not prompts:
            raise PromptsError("no prompts given", hint="pass --prompt TEXT or --prompt-set NAME")
        # Normalised once, before encoding: features and labels line up one to one.
        prompts = clean_prompts(prompts)
        names = names or [str(i) for i in range(len(images))]
        text_features, text_masks = self.encode_prompts(prompts)
        with self._timed("preprocess"):
            # Resize and normalise on the model's device (on a GPU this is most of the saving).
            pixel_values = self.processor.image_processor(images=images, return_tensors="pt",
                                                          device=self.core.device).pixel_values
        with self._timed("vision"):
            vision = self.core.encode_image(pixel_values)
        results = []
        for index, (image, name) in enumerate(zip(images, names)):
            outputs = self._decode_image(vision, index, text_features, text_masks)
            with self._timed("postprocess"):
                results.append(self._postprocess(outputs, prompts, (image.height, image.width), name))
        return results

    def _decode_image(self, vision, index: int, text_features, text_masks) -> Outputs:
        """Decoder outputs for one image and every prompt, in ``decode_batch`` chunks, as float32.

        They stay on the model's device: post-processing there, then only the kept masks travel.
        """
        chunks = []
        for start in range(0, len(text_features), self.decode_batch):
            features = text_features[start:start + self.decode_batch]
            with self._timed("decoder"):
                out = self.core.decode(vision.select([index] * len(features)), features,
                                       text_masks[start:start + self.decode_batch])
            chunks.append(Outputs(*(t.float() for t in out)))
        return Outputs(*(torch.cat(parts) for parts in zip(*chunks)))

    def _postprocess(self, outputs: Outputs, prompts: list[str], size: tuple[int, int], name: str) -> Result:
        per_prompt = self.processor.post_process_instance_segmentation(
            outputs, threshold=self.score_threshold, mask_threshold=self.mask_threshold,
            target_sizes=[size] * len(prompts),
        )
        labels = [prompt for prompt, found in zip(prompts, per_prompt) for _ in range(len(found["scores"]))]
        if labels:
            # A prompt with no instance keeps its masks at the mask head's size: leave it out of the cat.
            masks = torch.cat([found["masks"].bool() for found in per_prompt if len(found["scores"])]).cpu().numpy()
            boxes = torch.cat([found["boxes"] for found in per_prompt]).cpu().numpy().astype(np.float32)
            scores = torch.cat([found["scores"] for found in per_prompt]).cpu().numpy().astype(np.float32)
        else:
            masks, boxes, scores = np.zeros((0, *size), bool), np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return Result(name, prompts, masks, boxes, scores, labels, self._semantic_map(outputs.semantic_seg, size))

    def _semantic_map(self, semantic_logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """Per pixel, 1 + the index of the most likely prompt, where that prompt's probability passes
        the mask threshold; 0 elsewhere."""
        probabilities = torch.nn.functional.interpolate(
            semantic_logits, size=size, mode="bilinear", align_corners=False
        ).sigmoid()[:, 0]
        best, index = probabilities.max(dim=0)
        return torch.where(best > self.mask_threshold, index + 1, 0).cpu().numpy().astype(np.uint16)
