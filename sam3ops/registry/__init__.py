"""The model registry: register a format as a version, promote it to an alias, pull it, load it.

One registered model (default ``sam3``) whose versions are formats; the alias ``production`` (and
``previous-production`` for rollback) says which one a backend runs.
"""

from sam3ops.registry.download import pull
from sam3ops.registry.promotion import promote, rollback
from sam3ops.registry.registration import DEFAULT_ALIAS, DEFAULT_NAME, list_versions, load, register

__all__ = ["DEFAULT_ALIAS", "DEFAULT_NAME", "list_versions", "load", "promote", "pull", "register", "rollback"]
