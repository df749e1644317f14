"""sam3ops: an MLflow-tracked workspace for Meta's SAM3.

Stages (each one MLflow run): get weights (``hub.download`` or ``presets.init_weights``), convert,
predict, benchmark, register, promote, serve. See the README for the command line.
"""

__version__ = "0.1.0"
