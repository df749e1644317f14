"""sam3ops: an MLflow-tracked workspace for Meta's SAM3.

Stages (each one MLflow run, one package each): get weights (:mod:`sam3ops.weights`: a hub download
or a random preset), predict, convert, benchmark, register, promote, serve. See the README for the
command line and the layout.
"""

__version__ = "0.1.0"


def load(uri: str = "models:/sam3@production", **kwargs):
    """The inference core (:class:`sam3ops.inference.Segmenter`) of a registered version.

    ``sam3ops.load("models:/sam3@production")``: pulled and verified once into a local cache, then run
    on the runtime its files call for. See :func:`sam3ops.registry.load` for the options.
    """
    from sam3ops.registry import load as _load

    return _load(uri, **kwargs)
