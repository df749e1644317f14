"""The photos a metric was measured on, logged as an MLflow dataset without MLflow's warnings
(each one printed in `make demo`, once per stage that logs photos)."""

from __future__ import annotations

import warnings

import mlflow

from sam3ops.predict.samples import sample_image
from sam3ops.registry.logged import photo_dataset


def test_the_photo_dataset_is_logged_without_warnings():
    with mlflow.start_run() as run, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        photo_dataset([("astronaut", sample_image("astronaut"))], name="parity-photos")
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, UserWarning) and "mlflow" in w.filename]
    assert not shown, shown
    [logged] = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert logged.dataset.name == "parity-photos" and "height" in logged.dataset.schema
