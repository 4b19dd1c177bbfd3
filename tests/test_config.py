"""Tests for infomorphic.config: defaults, validation, overrides, TOML loading, round trips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from infomorphic.config import TrainConfig, load_config, parse_override


def test_defaults_are_valid_and_published() -> None:
    c = TrainConfig()
    # Schneider et al. 2025, appendices A.3, A.8 and Table 1: Adam, batch 1024, 100 epochs,
    # hidden lr 0.002 / wd 0.00035, readout 0.003 / 0.00015, 20 % validation, 100 lateral partners
    assert (c.network, c.setup, c.hidden, c.lateral_partners) == ("trivariate", 1, 100, 100)
    assert (c.epochs, c.batch_size, c.val_fraction) == (100, 1024, 0.2)
    assert (c.hidden_lr, c.hidden_weight_decay) == (0.002, 0.00035)
    assert (c.readout_lr, c.readout_weight_decay) == (0.003, 0.00015)
    assert c.backprop_lr == 0.001
    assert c.readout_k1 == 1.0 and c.hidden_k1 == 0.9
    assert c.n_bins == 20 and (c.hidden_bin_low, c.hidden_bin_high) == (-20.0, 20.0)
    assert c.dataset == "digits"
    assert c.baselines == ("backprop", "logistic")
    assert TrainConfig.from_dict({}) == c
    assert load_config() == c


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "key, value",
    [
        ("network", "deep"),
        ("setup", 4),
        ("setup", 0),
        ("hidden", 0),
        ("lateral_partners", -1),
        ("dataset", "imagenet"),
        ("val_fraction", 0.0),
        ("val_fraction", 1.0),
        ("epochs", -1),
        ("batch_size", 1),
        ("n_bins", 1),
        ("baselines", ("backprop", "svm")),
        ("device", "tpu"),
        ("hidden_lr", 0.0),
        ("hidden_lr", -1e-3),
        ("readout_lr", 0.0),
        ("backprop_lr", -0.1),
    ],
)
def test_bad_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        TrainConfig.from_dict({key: value})
    with pytest.raises(ValueError, match=key):
        TrainConfig(**{key: value})


def test_bin_range_must_be_increasing() -> None:
    with pytest.raises(ValueError, match="hidden_bin_high"):
        TrainConfig(hidden_bin_low=1.0, hidden_bin_high=1.0)


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", "ten"),
        ("epochs", 2.5),
        ("epochs", True),
        ("hidden_lr", "fast"),
        ("network", 3),
        ("seed", None),
        ("baselines", 3),
        ("threads", "two"),
    ],
)
def test_wrong_types_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"config key '{key}'"):
        TrainConfig.from_dict({key: value})


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"unknown config keys \['hiden'\]") as info:
        TrainConfig.from_dict({"hiden": 10})
    assert "hidden" in str(info.value)  # lists the valid keys


def test_lossless_conversions() -> None:
    c = TrainConfig.from_dict(
        {
            "epochs": 3.0,
            "hidden_lr": 1,
            "threads": None,
            "baselines": "logistic, backprop",
            "backprop_epochs": 4,
        }
    )
    assert c.epochs == 3 and isinstance(c.epochs, int)
    assert c.hidden_lr == 1.0 and isinstance(c.hidden_lr, float)
    assert c.threads is None
    assert c.baselines == ("logistic", "backprop")
    assert c.backprop_epochs == 4
    assert TrainConfig.from_dict({"baselines": []}).baselines == ()
    assert TrainConfig.from_dict({"baselines": ["logistic"]}).baselines == ("logistic",)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hidden_lr=1e-3", ("hidden_lr", 1e-3)),
        ("epochs=5", ("epochs", 5)),
        (" epochs = 5 ", ("epochs", 5)),
        ("network=bivariate-context", ("network", "bivariate-context")),
        ("hidden_goal={F}{C} - 0.5*{F}", ("hidden_goal", "{F}{C} - 0.5*{F}")),
        ("baselines=['logistic']", ("baselines", ["logistic"])),
        ("data_dir=None", ("data_dir", None)),
        ("name='a=b'", ("name", "a=b")),
        # text-valued keys stay text even when the text reads as a Python literal
        ("hidden_goal=0, 0, 1, 0, 0", ("hidden_goal", "0, 0, 1, 0, 0")),
        ("readout_goal=[-0.2, 0.1, 1, 0.1, 0]", ("readout_goal", "[-0.2, 0.1, 1, 0.1, 0]")),
        ("name=2024", ("name", "2024")),
        ("data_dir=5", ("data_dir", "5")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


def test_parse_override_feeds_the_config() -> None:
    key, value = parse_override("hidden_lr=1e-3")
    assert isinstance(value, float)
    assert TrainConfig.from_dict({key: value}).hidden_lr == 0.001
    c = load_config(
        overrides=dict(parse_override(t) for t in ("epochs=7", "network=single", "baselines=logistic"))
    )
    assert (c.epochs, c.network, c.baselines) == (7, "single", ("logistic",))


def test_goal_vector_override_resolves() -> None:
    from infomorphic.goals import Goal

    c = load_config(overrides=dict([parse_override("hidden_goal=0, 0, 1, 0, 0")]))
    assert Goal.resolve(c.hidden_goal, "FC") == Goal.parse("{F}{C}", "FC")


def test_parse_override_needs_equals() -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_override("epochs")


def test_load_flat_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'network = "bivariate-context"\nhidden = 32\nhidden_lr = 0.01\nbaselines = ["logistic"]\n'
    )
    c = load_config(path)
    assert (c.network, c.hidden, c.hidden_lr, c.baselines) == ("bivariate-context", 32, 0.01, ("logistic",))
    assert c.epochs == TrainConfig().epochs
    c = load_config(path, {"hidden": 64, "epochs": 3})
    assert (c.network, c.hidden, c.epochs) == ("bivariate-context", 64, 3)


def test_load_train_table_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[train]\nsetup = 2\nlateral_partners = 10\nseed = 3\n")
    c = load_config(path)
    assert (c.setup, c.lateral_partners, c.seed) == (2, 10, 3)
    assert load_config(path, {"seed": 4}).seed == 4


def test_toml_mixing_top_level_keys_and_train_table_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("epochs = 3\n\n[train]\nsetup = 2\n")  # epochs would be silently dropped
    with pytest.raises(ValueError, match=r"mixes top-level keys \(epochs\) with a \[train\] table"):
        load_config(path)


WIRED = """
[train]
epochs = 2
{extra}

[network]
[[network.layers]]
name = "h"
neurons = 8
goal = "{{F}}{{C}}"
inputs = {{ F = "input", C = "label" }}

[[network.layers]]
name = "readout"
neurons = "classes"
goal = "readout"
sample = false
inputs = {{ F = "h", C = {{ from = "label", weights = "identity" }} }}
"""


@pytest.mark.parametrize(
    "extra, overrides, key",
    [
        ("", {"hidden": 50}, "hidden"),  # infomorphic train --config wired.toml --hidden 50
        ("", {"setup": 2}, "setup"),
        ("hidden_k1 = 0.5", {}, "hidden_k1"),
        ("lateral_partners = 10", {}, "lateral_partners"),
        ("", {"hidden_binning": "adaptive"}, "hidden_binning"),
    ],
)
def test_a_wired_network_refuses_the_keys_it_would_ignore(
    tmp_path: Path, extra: str, overrides: dict, key: str
) -> None:
    path = tmp_path / "wired.toml"
    path.write_text(WIRED.format(extra=""))
    assert load_config(path).network_spec().layer("h").neurons == 8  # the table alone is fine
    path.write_text(WIRED.format(extra=extra))
    with pytest.raises(ValueError) as info:
        load_config(path, overrides)
    text = str(info.value)
    assert f"; {key} would be ignored: set them in the layers instead" in text and "\n" not in text


@pytest.mark.parametrize(
    "text, key",
    [
        ("hidden_lr = inf", "hidden_lr"),
        ("readout_lr = nan", "readout_lr"),
        ("hidden_k1 = -inf", "hidden_k1"),
        ("threads = -3", "threads"),
    ],
)
def test_non_finite_and_impossible_values_are_rejected(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=key):
        load_config(path)


def test_load_toml_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("epoch = 3\n")
    with pytest.raises(ValueError, match="epoch"):
        load_config(unknown)
    typed = tmp_path / "typed.toml"
    typed.write_text('epochs = "ten"\n')
    with pytest.raises(ValueError, match="'epochs'"):
        load_config(typed)
    # an override may repair a bad value from the file
    assert load_config(typed, {"epochs": 10}).epochs == 10


def test_to_dict_from_dict_round_trip() -> None:
    c = TrainConfig(
        network="bivariate-lateral",
        setup=2,
        hidden=17,
        baselines=("logistic",),
        threads=2,
        backprop_epochs=5,
        name="x",
        data_dir="/tmp/data",
        hidden_goal="{F}{C} - {F}",
    )
    d = c.to_dict()
    assert d["baselines"] == ["logistic"]
    assert TrainConfig.from_dict(d) == c
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == c
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_to_toml_reads_back_to_the_same_config(tmp_path: Path) -> None:
    wired = load_config(Path(__file__).resolve().parents[1] / "configs" / "networks" / "deep2.toml")
    cases = [
        TrainConfig(hidden=17, baselines=("logistic",), name="x", hidden_goal="{F}{C} - {F}"),
        TrainConfig(train_eval_size=None, threads=2, baselines=()),  # None where the default is not
        wired,
        wired.replace(seed=3, train_eval_size=None),
    ]
    for i, config in enumerate(cases):
        path = tmp_path / f"c{i}.toml"
        path.write_text(config.to_toml())
        assert load_config(path) == config
    assert 'train_eval_size = "none"' in cases[1].to_toml()
    assert "name" not in cases[1].to_toml()  # None by default: left out


def test_replace_is_type_checked() -> None:
    c = TrainConfig()
    assert c.replace(epochs=3).epochs == 3
    assert c.replace(epochs=3) != c
    with pytest.raises(ValueError, match="'epochs'"):
        c.replace(epochs="three")
    with pytest.raises(ValueError, match="unknown config keys"):
        c.replace(epoch=3)
