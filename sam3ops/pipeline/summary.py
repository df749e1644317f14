"""What the main job did: one row per stage (made or reused), and the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class StageRow:
    """One line of the summary: a stage, what it made, and whether it was reused."""

    stage: str
    artifact: str
    run_id: str
    reused: bool = False
    parity: str = ""
    ms_per_image: float | None = None
    throughput_img_s: float | None = None
    version: str = ""
    note: str = ""


@dataclass
class PipelineSummary:
    """The main job's outcome: the weights used, the prediction, every stage, the promoted version."""

    weights: Path
    weights_random: bool
    images_ok: int
    instances: int
    predictions: Path
    rows: list[StageRow] = field(default_factory=list)
    production: str | None = None  # the version the alias now points at

    @property
    def stages_reused(self) -> int:
        """How many stages reused an earlier run instead of running again."""
        return sum(row.reused for row in self.rows)

    def table(self) -> str:
        """The rows as aligned text."""
        head = ("stage", "artifact", "run", "reused", "parity", "ms/image", "images/s", "version")
        lines = [head] + [(r.stage, r.artifact, r.run_id[:12], "yes" if r.reused else "", r.parity,
                           "" if r.ms_per_image is None else f"{r.ms_per_image:.1f}",
                           "" if r.throughput_img_s is None else f"{r.throughput_img_s:.1f}",
                           r.version + (f" ({r.note})" if r.note else "")) for r in self.rows]
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)
