"""Config overrides: types are checked, unknown keys are named with a suggestion."""
import dataclasses
import typing

import pytest

from tl_app import config as config_lib
from tl_app.config import RecipeConfig
from tl_app.errors import UserError


@dataclasses.dataclass
class ExampleConfig(RecipeConfig):
    pooling: typing.Literal["cls", "mean"] = "mean"
    augment: bool = True


def test_overrides_are_parsed_by_field_type():
    cfg = config_lib.apply_overrides(
        ExampleConfig(),
        ["epochs=3", "learning_rate=2e-5", "augment=false", "pooling=cls", "data_dir=/x=y", "clipnorm=1.0"],
    )
    assert (cfg.epochs, cfg.learning_rate, cfg.augment, cfg.pooling) == (3, 2e-5, False, "cls")
    assert cfg.data_dir == "/x=y"  # only the first '=' splits
    assert cfg.clipnorm == 1.0
    assert config_lib.apply_overrides(cfg, ["clipnorm=none"]).clipnorm is None


def test_defaults_are_not_mutated():
    base = ExampleConfig()
    config_lib.apply_overrides(base, ["epochs=9"])
    assert base.epochs == 5


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("epochs=three", "'three' is not a valid int"),
        ("learning_rate=fast", "'fast' is not a valid float"),
        ("augment=maybe", "not a valid bool"),
        ("pooling=max", "expected one of cls, mean"),
        ("epochz=3", "Did you mean 'epochs'?"),
        ("epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_problem(assignment, message):
    with pytest.raises(UserError, match=message.replace("?", r"\?")):
        config_lib.apply_overrides(ExampleConfig(), [assignment], "example")


def test_json_round_trip_keeps_every_field():
    cfg = ExampleConfig(epochs=2)
    assert set(config_lib.to_dict(cfg)) == {f.name for f in dataclasses.fields(ExampleConfig)}
    assert '"epochs": 2' in config_lib.to_json(cfg)
