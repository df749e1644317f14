"""The predict defaults the CLI reads without torch are the ones the inference code uses."""

from sam3ops.predict import config


def test_the_segmenter_defaults_are_the_thresholds():
    import inspect

    from sam3ops.inference.segmenter import Segmenter

    parameters = inspect.signature(Segmenter.__init__).parameters
    assert parameters["score_threshold"].default == config.DEFAULT_SCORE_THRESHOLD
    assert parameters["mask_threshold"].default == config.DEFAULT_MASK_THRESHOLD
