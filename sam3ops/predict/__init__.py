"""The predict stage: prompts, sample photos, segmentation outputs and their pictures."""
