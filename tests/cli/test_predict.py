"""`sam3ops predict`, `samples` and `prompts`: what they pass on and print."""

from types import SimpleNamespace

from sam3ops.errors import PartialFailureError
from sam3ops.predict import config
from sam3ops.tracking.result import FAILED, StageResult
from tests.cli.helpers import finished, invoke
from tests.conftest import REPO_ROOT
from tests.support.cli import run_cli


def test_predict_passes_every_option_and_flags_random_weights(replace):
    done = SimpleNamespace(images_ok=3, instances=7, weights_random=True)
    stage = replace("sam3ops.predict.stage.predict_stage", finished("predict", done))
    out = invoke("predict", "a.png", "photos/", "--prompt", "cat", "--prompt", "red cup", "--prompt-set", "animals",
                 "--precision", "bf16", "--score-threshold", "0.3", "--runtime", "meta").output
    assert stage.kwargs == {"images": ["a.png", "photos/"], "weights": config.DEFAULT_WEIGHTS,
                            "prompt_texts": ["cat", "red cup"], "prompt_sets": ["animals"],
                            "output": config.DEFAULT_OUTPUT, "device": "cpu", "precision": "bf16",
                            "compile_model": False, "score_threshold": 0.3,
                            "mask_threshold": config.DEFAULT_MASK_THRESHOLD, "top_k": None,
                            "max_pixels": config.DEFAULT_MAX_PIXELS, "runtime": "meta"}
    assert out.strip() == ("3 images, 7 instances -> predictions (RANDOM weights: the masks mean nothing) "
                           "(run run0123456789)")


def test_top_k_is_a_number_or_off(capsys, replace):
    done = SimpleNamespace(images_ok=1, instances=3, weights_random=False)
    for given, passed in (("3", 3), ("off", None), ("OFF", None), ("0", 0)):  # 0: the stage refuses it in its run
        stage = replace("sam3ops.predict.stage.predict_stage", finished("predict", done))
        invoke("predict", "a.png", "--prompt", "cat", "--top-k", given)
        assert stage.kwargs["top_k"] == passed, given
    code, _, err = run_cli(capsys, "predict", "a.png", "--prompt", "cat", "--top-k", "2.5")
    assert code == 2 and "'2.5' is not a whole number or one of: off" in err


def test_some_failed_images_exit_1_with_one_line_and_no_summary(capsys, replace):
    failed = StageResult(stage="predict", run_id="r1", status=FAILED, error=PartialFailureError("1 of 2 images failed"),
                         outputs=SimpleNamespace(images_ok=1, instances=2, weights_random=False))
    replace("sam3ops.predict.stage.predict_stage", failed)
    code, out, err = run_cli(capsys, "predict", "a.png", "--prompt", "cat")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [f"sam3ops: error: 1 of 2 images failed (hint: {PartialFailureError.hint})"]


def test_prompts_lists_sets(capsys):
    code, out, _ = run_cli(capsys, "prompts", "--file", str(REPO_ROOT / "prompts" / "default_prompts.json"))
    assert code == 0 and out.startswith("single_objects: person")


def test_samples_writes_the_photos(tmp_path):
    out = invoke("samples", "--output", str(tmp_path / "s")).output.split()
    assert [p.rsplit("/", 1)[-1] for p in out] == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    assert all((tmp_path / "s" / name.rsplit("/", 1)[-1]).stat().st_size > 10_000 for name in out)
