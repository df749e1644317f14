"""The weights stage: hub download (resumable, verified), random presets, SAM3's tokenizer."""
