"""Where versions registered before the registry became a package find their model class.

MLflow copies a registered version's entry file into the model; those registered before
``sam3ops.registry`` existed import ``Sam3PyFunc`` from here. New versions import it from
:mod:`sam3ops.registry.pyfunc`.
"""

from sam3ops.registry.pyfunc import Sam3PyFunc

__all__ = ["Sam3PyFunc"]
