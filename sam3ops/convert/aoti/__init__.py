"""AOTInductor packages of SAM3: the three parts through ``torch.export`` and AOTInductor."""
