"""What a weights folder is: its manifest, its kind, folders derived from it, atomic writes."""
