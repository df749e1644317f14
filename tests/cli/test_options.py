"""What the command modules share: defaults read from config classes, and the choices kept torch-free."""

from dataclasses import dataclass, field

from sam3ops.cli import options


def test_defaults_of_a_config_class_leave_out_required_fields():
    @dataclass
    class Example:
        needed: str
        count: int = 3
        names: list = field(default_factory=list)

    assert options.defaults_of(Example) == {"count": 3}


def test_defaults_read_as_text_the_way_mlproject_writes_them():
    assert [options.as_text(v) for v in ((1, 4, 8), 0.0, 2.5, 10, "fp32")] == ["1,4,8", "0", "2.5", "10", "fp32"]

