"""Meta's own SAM3: its ``sam3`` package as the outside reference, and its ``sam3.pt`` checkpoints."""
