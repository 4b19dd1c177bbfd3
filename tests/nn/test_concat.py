"""Input classes that join several sources side by side ("h1+h2"): skip connections and any DAG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.config import load_config
from infomorphic.goalsearch.report import input_field
from infomorphic.nn.network import Network
from infomorphic.nn.wiring import InputSpec, NetworkSpec, stacked

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "networks"
D, K, B = 64, 10, 48
READOUT_C = {"from": "label", "weights": "identity"}


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=gen) * 2, torch.randint(0, K, (B,), generator=gen)


def _hidden(name: str, inputs: dict) -> dict:
    return {"name": name, "neurons": 6, "goal": "trivariate-mnist-tpe", "inputs": inputs}


def _readout(f: object) -> dict:
    return {
        "name": "readout",
        "neurons": "classes",
        "goal": "readout",
        "activation": "bivariate",
        "activation_params": {"k1": 1.0},
        "binning": "adaptive",
        "sample": False,
        "inputs": {"F": f, "C": READOUT_C},
    }


def _recording(net: Network) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Each layer's input classes per call (only the classes a presentation recomputes)."""
    seen: dict[str, list[dict[str, torch.Tensor]]] = {name: [] for name in net.spec.order()}
    for name in seen:
        net.layer(name).register_forward_pre_hook(lambda mod, args, n=name: seen[n].append(dict(args[0])))
    return seen


def test_the_list_the_plus_form_and_the_builder_give_one_spec() -> None:
    listed = NetworkSpec.from_dict(
        {
            "layers": [
                _hidden("h1", {"F": "input", "C": "label", "L": "previous:h1"}),
                _hidden("h2", {"F": "h1", "C": "label", "L": "previous:h2"}),
                _readout(["h1", "h2"]),
            ],
            "readout": "readout",
        }
    )
    plus = NetworkSpec.from_dict(
        {**listed.to_dict(), "layers": [*listed.to_dict()["layers"][:2], _readout({"from": "h1+h2"})]}
    )
    built = stacked([6, 6], skip=True)
    assert listed == plus == built
    assert built.layer("readout").inputs["F"] == InputSpec("h1+h2")
    assert InputSpec("h1+h2").kind == "concat"
    assert InputSpec("h1+h2").parts == (InputSpec("h1"), InputSpec("h2"))
    assert NetworkSpec.from_dict(json.loads(json.dumps(built.to_dict()))) == built
    assert built.input_size(InputSpec("input+h1+h2"), D, K) == D + 12
    # the shipped example reads like the builder's wiring (widths and the training table aside)
    shipped = load_config(CONFIGS / "deep2_skip.toml").network_spec()
    assert shipped.layer("readout").inputs["F"] == InputSpec("h1+h2")
    assert shipped == stacked([100, 100], skip=True)


BAD = [
    (["h1"], "a list of sources joins two or more source strings"),
    (["h1", 3], "a list of sources joins two or more source strings"),
    ({"from": ["h1"]}, "a list of sources joins two or more source strings"),
    ("h1+label", "'label' cannot be part of a concatenation: the label is withheld at evaluation"),
    ("h1+random:5", "'random:5' cannot be part of a concatenation: only input, <layer> and previous:<layer>"),
    ("h1+previous:readout", "a layer's own previous output is its lateral input"),
    ("h1+h1", "a source appears twice in 'h1+h1'"),
    ("h1+", "an empty part in 'h1+'"),
    ("h1+h9", "unknown source 'h9'"),
    ("h1+readout", "a layer cannot read its own current output"),
]


@pytest.mark.parametrize("f, message", BAD, ids=[str(c[0]) for c in BAD])
def test_bad_concatenations_are_one_line_errors_naming_layer_and_key(f: object, message: str) -> None:
    layers = [_hidden("h1", {"F": "input", "C": "label", "L": "previous:h1"}), _readout(f)]
    with pytest.raises(ValueError) as info:
        NetworkSpec.from_dict({"layers": layers, "readout": "readout"})
    text = str(info.value)
    assert text.startswith("network layer 'readout', key 'inputs.F")
    assert message in text and "\n" not in text


def test_a_cycle_through_a_concatenation_is_refused() -> None:
    layers = [
        _hidden("h1", {"F": "input+h2", "C": "label", "L": "previous:h1"}),
        _hidden("h2", {"F": "h1", "C": "label", "L": "previous:h2"}),
        _readout("h2"),
    ]
    with pytest.raises(ValueError, match=r"cycle \(h1 -> h2 -> h1\)"):
        NetworkSpec.from_dict({"layers": layers, "readout": "readout"})


def test_a_densely_connected_network_reads_the_data_and_every_layer_below() -> None:
    spec = stacked([6, 5, 4], dense=True)
    assert [spec.layer(n).inputs["F"] for n in ("h1", "h2", "h3", "readout")] == [
        InputSpec("input"),
        InputSpec("input+h1"),
        InputSpec("input+h1+h2"),
        InputSpec("h1+h2+h3"),
    ]
    net = Network(spec, D, K, generator=torch.Generator().manual_seed(0))
    assert [net.layers()[n].in_features["F"] for n in ("h1", "h2", "h3", "readout")] == [D, D + 6, D + 11, 15]
    seen = _recording(net)
    x, y = _batch()
    out = net(x, y, torch.Generator().manual_seed(1))
    h3_inputs = seen["h3"][-1]  # the last presentation's, from which out comes
    assert torch.equal(h3_inputs["F"], torch.cat([x, out.emitted["h1"], out.emitted["h2"]], dim=1))


def test_the_readout_of_a_skip_network_sees_every_layer_side_by_side() -> None:
    net = Network(stacked([6, 5], skip=True), D, K, generator=torch.Generator().manual_seed(0))
    assert net.readout_layer.in_features["F"] == 11
    seen = _recording(net)
    x, y = _batch()
    out = net(x, y, torch.Generator().manual_seed(1))
    (readout_inputs,) = seen["readout"]
    assert torch.equal(readout_inputs["F"], torch.cat([out.emitted["h1"], out.emitted["h2"]], dim=1))
    # its aggregate is that of the dense weight on the joined input
    w, b = net.readout_layer.effective_weight("F"), net.readout_layer.bias["F"]
    expected = out.emitted["h1"] @ w[:, :6].T + out.emitted["h2"] @ w[:, 6:].T + b
    torch.testing.assert_close(out.readout.aggregates[..., 0], expected)


def test_an_absent_part_is_zeros_until_it_exists() -> None:
    """h1 reads the data beside h2's previous output (feedback joined to the feedforward input):
    zeros in the first presentation, h2's spikes in the second; h2 reads the data beside h1."""
    spec = NetworkSpec.from_dict(
        {
            "layers": [
                _hidden("h1", {"F": ["input", "previous:h2"], "C": "label", "L": "previous:h1"}),
                _hidden("h2", {"F": "input+h1", "C": "label", "L": "previous:h2"}),
                _readout("input+h2"),
            ],
            "readout": "readout",
        }
    )
    assert spec.n_presentations == 2 and spec.needed_early() == {"h1", "h2"}
    net = Network(spec, D, K, generator=torch.Generator().manual_seed(0))
    assert net.layer("h1").in_features["F"] == D + 6 and net.readout_layer.in_features["F"] == D + 6
    seen = _recording(net)
    x, y = _batch()
    out = net(x, y, torch.Generator().manual_seed(1))
    first, second = seen["h1"]
    assert torch.equal(first["F"], torch.cat([x, torch.zeros(B, 6)], dim=1))
    assert torch.equal(second["F"][:, :D], x)
    assert set(second["F"][:, D:].unique().tolist()) == {-1.0, 1.0}  # h2's spikes of the first presentation
    h2_first, h2_second = seen["h2"]
    assert torch.equal(h2_first["F"][:, D:].abs(), torch.ones(B, 6))
    assert torch.equal(h2_second["F"], torch.cat([x, out.emitted["h1"]], dim=1))
    (readout_inputs,) = seen["readout"]
    assert torch.equal(readout_inputs["F"], torch.cat([x, out.emitted["h2"]], dim=1))


def test_receptive_fields_add_every_path_to_the_data() -> None:
    spec = NetworkSpec.from_dict(
        {
            "layers": [
                _hidden("h1", {"F": "input", "C": "label", "L": "previous:h1"}),
                _hidden("h2", {"F": "input+h1+previous:readout", "C": "label", "L": "previous:h2"}),
                _readout("h1+h2"),
            ],
            "readout": "readout",
        }
    )
    net = Network(spec, D, K, generator=torch.Generator().manual_seed(0))
    w1 = net.layer("h1").effective_weight("F")
    w2 = net.layer("h2").effective_weight("F")  # columns: data (D), h1 (6), readout (K)
    wr = net.readout_layer.effective_weight("F")  # columns: h1 (6), h2 (6)
    field2 = w2[:, :D] + w2[:, D : D + 6] @ w1  # the previous readout is not a path of this presentation
    torch.testing.assert_close(input_field(net, "h2"), field2.detach())
    torch.testing.assert_close(input_field(net, "readout"), (wr[:, :6] @ w1 + wr[:, 6:] @ field2).detach())


def test_a_skip_network_trains_resumes_and_reports_from_the_command_line(tmp_path: Path) -> None:
    text = (CONFIGS / "deep2_skip.toml").read_text().replace("neurons = 100", "neurons = 12")
    (tmp_path / "skip.toml").write_text(text)
    common = ["--threads", "1", "--baselines", "backprop", "--json"]
    res = CliRunner().invoke(
        app,
        ["train", "--config", str(tmp_path / "skip.toml"), "--epochs", "1", "--out-dir", str(tmp_path)]
        + ["--name", "skip", *common],
    )
    assert res.exit_code == 0, res.output
    run = tmp_path / "skip"
    again = CliRunner().invoke(app, ["train", "--resume", str(run), "--epochs", "2", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["epochs"] == 2
    report = CliRunner().invoke(app, ["report", str(run)])
    assert report.exit_code == 0, report.output
    assert (run / "report" / "report.html").exists()


def test_partners_and_masks_count_over_the_joined_width(tmp_path: Path) -> None:
    def spec(f: object) -> NetworkSpec:
        return NetworkSpec.from_dict(
            {
                "layers": [
                    _hidden("h1", {"F": "input", "C": "label", "L": "previous:h1"}),
                    _hidden("h2", {"F": f, "C": "label", "L": "previous:h2"}),
                    _readout("h2"),
                ],
                "readout": "readout",
            }
        )

    net = Network(
        spec({"from": ["input", "h1"], "partners": 7}), D, K, generator=torch.Generator().manual_seed(0)
    )
    used = net.layer("h2").effective_weight("F") != 0
    assert used.shape == (6, D + 6) and used.sum(1).tolist() == [7] * 6
    mask = torch.zeros(6, D + 6)
    mask[:, D:] = 1  # h2 sees only h1's part of the join
    np.save(tmp_path / "mask.npy", mask.numpy())
    net = Network(spec({"from": "input+h1", "mask": str(tmp_path / "mask.npy")}), D, K)
    assert torch.equal(net.layer("h2").effective_weight("F")[:, :D], torch.zeros(6, D))
    x, y = _batch()
    net(x, y, torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"key 'inputs.F'.*\(6, 70\)"):
        Network(spec({"from": "input+h1", "mask": mask[:, :D].tolist()}), D, K)
