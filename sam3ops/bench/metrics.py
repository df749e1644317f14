"""The benchmark stage's metric and param names: the contract the UI, ``compare``, the registry and
the notebooks read (see the README's "Benchmark metrics" section).

Every per-batch metric is logged with ``step`` = batch size, so the UI plots it against batch.
Plain names only: this module imports nothing, so the CLI and the registry can read it cheaply.
"""

LATENCY = ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms")
THROUGHPUT = ("ms_per_image", "throughput_img_s")
MEMORY = ("vram_peak_mb", "vram_nvml_mb", "host_rss_peak_mb")
STAGES = ("preprocess_ms", "stage_vision_ms", "stage_text_ms", "stage_decoder_ms", "postprocess_ms")
ACCURACY = ("parity_mask_iou",)
ENERGY = ("energy_j_per_image",)

# Every metric a benchmark logs per batch size.
PER_BATCH = (*LATENCY, *THROUGHPUT, *MEMORY, *ENERGY, *STAGES)
# What the registry copies onto a version (``bench.<name>`` tags): the headline numbers and accuracy.
HEADLINE = (*LATENCY, *THROUGHPUT, *MEMORY, *ENERGY, *ACCURACY)
# The params that identify a configuration, so runs line up in the compare view.
PARAMS = ("runtime", "precision", "batch", "image_size", "prompts_per_image", "device", "gpu_name",
          "weights_commit", "weights_random")
