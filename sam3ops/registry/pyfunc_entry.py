"""The models-from-code entry of every registered SAM3 version (copied into the model by MLflow).

Loading a version runs this file instead of unpickling an object, so any sam3ops install that has
:class:`sam3ops.registry.pyfunc.Sam3PyFunc` can load it.
"""

import mlflow

from sam3ops.registry.pyfunc import Sam3PyFunc

mlflow.models.set_model(Sam3PyFunc())
