"""The main job: weights -> predict -> convert -> benchmark -> register -> promote, in one parent run.

:mod:`config` holds its options (defaults, promotion policy, formats; no torch, no mlflow, read by
``sam3ops pipeline --help``), :mod:`run` chains the stages' public functions (:func:`run.run_pipeline`)
and :mod:`summary` is what it returns. Nothing is imported here, so reading :mod:`config` is cheap.
"""
