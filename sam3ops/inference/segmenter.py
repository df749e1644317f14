"""Text-prompted segmentation on any model core: pre-processing, prompt cache, post-processing.

The processor saved with the weights (``Sam3Processor``) resizes and normalises images, tokenizes
prompts and turns raw outputs into thresholded masks at the original size; the model core
(:mod:`sam3ops.inference.core`) runs the network. One image with N prompts runs the vision encoder
once, each distinct prompt's text encoder once (cached), and the decoder N times. The stage split
(:mod:`sam3ops.inference.timing`) never synchronises the GPU inside a call.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from sam3ops.checkpoint.kinds import check_weights_dir, is_aoti_dir, is_engine_dir, is_onnx_dir
from sam3ops.errors import PromptsError, UsageError
from sam3ops.inference.core import ModelCore, Outputs, TorchCore
from sam3ops.inference.device import resolve_device, resolve_precision
from sam3ops.inference.result import Result
from sam3ops.inference.selection import KEEP_ALL, check_top_k, top_k_queries
from sam3ops.inference.timing import STAGES, Timings
from sam3ops.inference.tuning import TorchOptions

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "meta")  # auto: from what the folder holds; meta: Meta's own model (a sam3.pt)
__all__ = ["RUNTIMES", "STAGES", "Segmenter", "Timings"]


class Segmenter:
    """SAM3 text-prompted instance segmentation over a model core.

    Args:
        core: the runtime (``TorchCore``, or the ONNX / TensorRT cores of the convert stage).
        processor: the ``Sam3Processor`` saved with the weights.
        score_threshold: keep instances whose score (query score x presence) is above this.
        top_k: instead, keep the ``top_k`` best-scoring instances of each (image, prompt) pair
            whatever their score (``score_threshold`` is then not applied); None: the threshold.
        mask_threshold: binarise mask probabilities above this.
        decode_batch: (image, prompt) pairs per decoder call (default: ``options.decode_batch``).
        options: the speed options that apply here (``batch_pairs``, ``gpu_postprocess``,
            ``native_outputs``, ``pinned_inputs``; see :class:`~sam3ops.inference.tuning.TorchOptions`).
    """

    def __init__(self, core: ModelCore, processor, *, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                 decode_batch: int | None = None, options: TorchOptions | None = None, top_k: int | None = None):
        self.options = options or TorchOptions()
        decode_batch = self.options.decode_batch if decode_batch is None else decode_batch
        for name, value in (("score_threshold", score_threshold), ("mask_threshold", mask_threshold)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be between 0 and 1, got {value}")
        if decode_batch < 1:
            raise UsageError(f"decode_batch must be at least 1, got {decode_batch}")
        self.core, self.processor = core, processor
        self.score_threshold, self.mask_threshold, self.decode_batch = score_threshold, mask_threshold, decode_batch
        self.top_k = check_top_k(top_k)
        # A core that reads prompt strings itself (Meta's) knows its context; else the tokenizer does.
        self.context_length = getattr(core, "context_length", None) or processor.tokenizer.model_max_length
        self.timings = Timings(core.device)
        self.warnings: list[str] = []
        self._text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_dir(cls, weights_dir: Path, *, device: str = "cpu", precision: str = "fp32", compile: bool = False,
                 runtime: str = "auto", options: TorchOptions | None = None, force: bool = False,
                 **kwargs) -> Segmenter:
        """Load the weights and processor of ``weights_dir`` on ``device`` in ``precision``.

        A folder of safetensors runs on the PyTorch core (with ``options``: attention kernels,
        compile mode, ...); a folder of ONNX graphs on ONNX Runtime (``precision``, ``compile`` and
        the core's options do not apply there: the graphs fix them); a folder of TensorRT engines
        on TensorRT (``device`` must be ``cuda``); a folder of AOTInductor packages on their compiled
        code (``device`` of the type they were compiled for; ``force`` runs packages of another torch
        release, GPU or CPU instruction set anyway). A Meta-layout folder (``sam3.pt``) runs on Meta's
        own model (:mod:`sam3ops.inference.meta_core`), as does ``runtime="meta"``.

        Raises:
            WeightsError: the folder is missing or incomplete.
            UsageError: unknown precision or runtime, CUDA requested without a GPU, or ``runtime="meta"``
                for a transformers folder.
            MetaPackageError: Meta's runtime without Meta's ``sam3`` package.
            ServingError: AOTInductor packages compiled elsewhere (see ``AotiCore``), unless ``force``.
        """
        from sam3ops.inference import meta_core

        if runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime {runtime!r}", hint=f"choose one of: {', '.join(RUNTIMES)}")
        if runtime == "meta" or meta_core.is_meta_layout(weights_dir):
            core = meta_core.load_meta_core(Path(weights_dir), device=device, precision=precision)
            return cls(core, meta_core.post_processor(), **kwargs)
        from transformers import Sam3Model, Sam3Processor

        weights_dir = check_weights_dir(weights_dir)
        torch_device, dtype = resolve_device(device), resolve_precision(precision)
        processor = Sam3Processor.from_pretrained(weights_dir)
        options = options or TorchOptions()
        kwargs["options"] = options
        if is_onnx_dir(weights_dir):
            from sam3ops.inference.onnx_core import OnnxCore

            return cls(OnnxCore(weights_dir, device=device), processor, **kwargs)
        if is_engine_dir(weights_dir):
            from sam3ops.inference.trt_core import TrtCore

            return cls(TrtCore(weights_dir, device=device), processor, **kwargs)
        if is_aoti_dir(weights_dir):
            from sam3ops.inference.aoti_core import AotiCore

            return cls(AotiCore(weights_dir, device=device, force=force), processor, **kwargs)
        attention = {} if options.attention == "auto" else {"attn_implementation": options.attention}
        model = Sam3Model.from_pretrained(weights_dir, dtype=dtype, **attention).to(torch_device)
        return cls(TorchCore(model, compile=compile, options=options), processor, **kwargs)

    def _timed(self, stage: str):
        return self.timings.stage(stage)

    def reset_timings(self) -> None:
        """Start the stage split afresh (the benchmark does, so it covers measured calls only)."""
        self.timings = Timings(self.core.device)

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

    def _encode_new(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(self.core, "encode_prompts"):  # Meta's text encoder tokenizes the strings itself
            with self._timed("text"):
                return self.core.encode_prompts(prompts)
        input_ids, attention_mask = self._tokenize(prompts)
        with self._timed("text"):
            return self.core.encode_text(input_ids, attention_mask), attention_mask

    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text features and attention masks for ``prompts``; each distinct prompt is encoded once ever."""
        from sam3ops.inference.prompts import validate_prompt

        prompts = [validate_prompt(p) for p in prompts]
        if new := [p for p in dict.fromkeys(prompts) if p not in self._text_cache]:
            features, attention_mask = self._encode_new(new)
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
            pixel_values = self._pixel_values(images)
        with self._timed("vision"):
            vision = self.core.encode_image(pixel_values)
        if self.options.batch_pairs:
            per_image = iter(self._decode_pairs(vision, len(images), text_features, text_masks))
        else:  # lazily: image i is post-processed before image i + 1 is decoded
            per_image = (self._decode_image(vision, i, text_features, text_masks) for i in range(len(images)))
        finish = self._postprocess_on_device if self.options.gpu_postprocess else self._postprocess
        results = []
        for outputs, image, name in zip(per_image, images, names):
            with self._timed("postprocess"):
                results.append(finish(outputs, prompts, (image.height, image.width), name))
        return results

    def _pixel_values(self, images: list):
        """Resized, normalised pixels on the model's device (resizing there is most of the saving on a GPU).

        With ``pinned_inputs`` the photos go up as uint8 from pinned host memory without blocking
        the host (the copy overlaps what the GPU is still doing); the processor's resize and
        normalisation then run on the device exactly as for PIL input.
        """
        if hasattr(self.core, "pixel_values"):  # a core with transforms of its own (Meta's) applies those
            return self.core.pixel_values(images)
        device = self.core.device
        if self.options.pinned_inputs:
            tensors = [torch.from_numpy(np.array(image if image.mode == "RGB" else image.convert("RGB")))
                       .permute(2, 0, 1) for image in images]
            if device.type == "cuda":
                tensors = [t.pin_memory().to(device, non_blocking=True) for t in tensors]
            images = tensors
        return self.processor.image_processor(images=images, return_tensors="pt", device=device).pixel_values

    def _cast(self, tensor: torch.Tensor) -> torch.Tensor:
        # native_outputs: post-processing turns only the kept queries to float32.
        return tensor if self.options.native_outputs else tensor.float()

    def _decode_image(self, vision, index: int, text_features, text_masks) -> Outputs:
        """Decoder outputs for one image and every prompt, in ``decode_batch`` chunks, as float32
        (or the model's precision with ``native_outputs``).

        They stay on the model's device: post-processing there, then only the kept masks travel.
        """
        chunks = []
        for start in range(0, len(text_features), self.decode_batch):
            features = text_features[start:start + self.decode_batch]
            with self._timed("decoder"):
                out = self.core.decode(vision.select([index] * len(features)), features,
                                       text_masks[start:start + self.decode_batch])
            chunks.append(Outputs(*(self._cast(t) for t in out)))
        return Outputs(*(torch.cat(parts) for parts in zip(*chunks)))

    def _decode_pairs(self, vision, n_images: int, text_features, text_masks) -> list[Outputs]:
        """Decoder outputs of every (image, prompt) pair of the call, ``decode_batch`` pairs per decoder
        call across images (``batch_pairs``); split back per image, prompts in order."""
        n = len(text_features)
        image_index = torch.arange(n_images).repeat_interleave(n)
        prompt_index = torch.arange(n).repeat(n_images).to(text_features.device)
        chunks = []
        for start in range(0, n * n_images, self.decode_batch):
            prompts = prompt_index[start:start + self.decode_batch]
            with self._timed("decoder"):
                out = self.core.decode(vision.select(image_index[start:start + self.decode_batch]),
                                       text_features.index_select(0, prompts),
                                       text_masks.index_select(0, prompts.to(text_masks.device)))
            chunks.append(Outputs(*(self._cast(t) for t in out)))
        whole = Outputs(*(torch.cat(parts) for parts in zip(*chunks)))
        return [Outputs(*(t[i * n:(i + 1) * n] for t in whole)) for i in range(n_images)]

    def _postprocess(self, outputs: Outputs, prompts: list[str], size: tuple[int, int], name: str) -> Result:
        threshold = self.score_threshold
        if self.top_k is not None:  # the k best queries of each prompt, whatever their score
            outputs, threshold = top_k_queries(outputs, self.top_k), KEEP_ALL
        per_prompt = self.processor.post_process_instance_segmentation(
            outputs, threshold=threshold, mask_threshold=self.mask_threshold,
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

    def _postprocess_on_device(self, outputs: Outputs, prompts: list[str], size: tuple[int, int], name: str) -> Result:
        """:meth:`_postprocess`'s result, by :func:`~sam3ops.inference.postprocess.select_instances`."""
        from sam3ops.inference.postprocess import select_instances

        threshold = self.score_threshold
        if self.top_k is not None:  # as in _postprocess
            outputs, threshold = top_k_queries(outputs, self.top_k), KEEP_ALL
        which, masks, boxes, scores = select_instances(outputs, size=size, score_threshold=threshold,
                                                       mask_threshold=self.mask_threshold)
        labels = [prompts[i] for i in which.tolist()]
        return Result(name, prompts, masks, boxes, scores, labels, self._semantic_map(outputs.semantic_seg, size))

    def _semantic_map(self, semantic_logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """Per pixel, 1 + the index of the most likely prompt, where that prompt's probability passes
        the mask threshold; 0 elsewhere."""
        probabilities = torch.nn.functional.interpolate(
            semantic_logits.float(), size=size, mode="bilinear", align_corners=False
        ).sigmoid()[:, 0]
        best, index = probabilities.max(dim=0)
        return torch.where(best > self.mask_threshold, index + 1, 0).cpu().numpy().astype(np.uint16)
