"""The model registry: register a format as a version, promote it to an alias, pull it, load it.

One registered model (default ``sam3``) whose versions are formats; the alias ``production`` (and
``previous-production`` for rollback) says which one a backend runs.

Modules, each importing only those above it: ``client`` (the MLflow client, names, lookups, error
translation), ``tags`` and ``registration`` (register, list versions), ``lock`` and ``promotion``
(promote, rollback, history), ``fetch`` and ``download`` (pull), ``loading`` (load), and ``pyfunc``
(what every version is, for ``mlflow.pyfunc`` and ``mlflow models serve``).
"""

from sam3ops.registry.client import DEFAULT_ALIAS, DEFAULT_NAME
from sam3ops.registry.download import pull
from sam3ops.registry.loading import load
from sam3ops.registry.promotion import promote, rollback
from sam3ops.registry.registration import list_versions, register

__all__ = ["DEFAULT_ALIAS", "DEFAULT_NAME", "list_versions", "load", "promote", "pull", "register", "rollback"]
