"""The file names of a weights folder: the one place they are spelled (see the README's "Weights
folders" section). Plain names only, no imports: every layer may read them."""

MANIFEST_NAME = "manifest.json"
# The layout of the ``facebook/sam3`` hub repo in transformers format: every kind of folder has these.
REQUIRED_FILES = ("config.json", "processor_config.json")
# ``convert --format onnx``: the three parts as graphs (external data files beside them past 2 GB).
ONNX_GRAPHS = ("vision.onnx", "text.onnx", "decoder.onnx")
# ``convert --format tensorrt``: one engine per graph, each with a ``<engine>.json`` build sidecar.
ENGINES = ("vision.engine", "text.engine", "decoder.engine")
# ``convert --format aoti``: the three parts compiled by AOTInductor into packages, and their
# build sidecar (torch version, device, GPU or CPU instruction set, batch range).
AOTI_PACKAGES = ("vision.pt2", "text.pt2", "decoder.pt2")
AOTI_SIDECAR = "aoti.json"
# Meta's layout: the image model (and optionally the video tracker) in Meta's own ``sam3.pt``, which
# ``sam3.model_builder.build_sam3_image_model(checkpoint_path=...)`` loads; beside it only the manifest.
META_CHECKPOINT = "sam3.pt"
# In a transformers folder converted from Meta's layout: the tensors transformers has no place for
# (the ViT's CLS position slot, the point-prompt layers), kept so the way back is lossless.
META_ONLY = "meta_only.safetensors"
