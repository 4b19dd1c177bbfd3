"""The network builder: the papers' kinds as wirings (identical to the code before the builder),
wiring errors, deep networks and the locality of every layer's gradient."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from legacy_network import InfomorphicNetwork as LegacyNetwork
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.config import load_config
from infomorphic.goals import Goal
from infomorphic.nn.layer import InfomorphicLayer
from infomorphic.nn.network import Network
from infomorphic.nn.wiring import InputSpec, LayerSpec, NetworkSpec, stacked
from infomorphic.seeding import generator
from infomorphic.train.loop import build_network

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "networks"
D, K, B = 64, 10, 48

# TOML wiring -> the legacy kind with the same hyperparameters
KINDS = {
    "single.toml": dict(kind="single"),
    "setup1.toml": dict(kind="trivariate", setup=1, n_hidden=100),
    "setup2.toml": dict(kind="trivariate", setup=2, n_hidden=2000, lateral_partners=100),
    "setup3.toml": dict(kind="trivariate", setup=3, n_hidden=100, lateral_partners=100),
    "bivariate_context.toml": dict(kind="bivariate-context", n_hidden=100),
    "bivariate_lateral.toml": dict(kind="bivariate-lateral", n_hidden=100),
    "random_hidden.toml": dict(kind="random-hidden", n_hidden=100),
}


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=gen) * 2, torch.randint(0, K, (B,), generator=gen)


def _pair(file: str) -> tuple[Network, LegacyNetwork]:
    config = load_config(CONFIGS / file)
    new = build_network(config, D, K)
    old = LegacyNetwork(D, K, generator=generator(config.seed, "init"), **KINDS[file])
    return new, old


# wirings with a class stored sparsely (setup 2: 100 lateral partners of 2000 neurons): its weight is
# (N, P) values beside index_L instead of the old (N, N) weight and mask_L, and the sparse product
# sums in another order, so those cases map the weights and compare with a tight tolerance
SPARSE = {"setup2.toml": ("hidden", "L")}


def _dense_state(net: Network) -> dict[str, torch.Tensor]:
    """The state dict with every sparse class written as the old dense weight and mask."""
    state = dict(net.state_dict())
    for name, layer in net.named_children():
        for letter in list(layer.weight):
            if layer.is_sparse(letter):
                state[f"{name}.weight.{letter}"] = layer.effective_weight(letter).detach()
                state[f"{name}.mask_{letter}"] = layer.mask(letter)
                del state[f"{name}.index_{letter}"]
    return state


@pytest.mark.parametrize("file", sorted(KINDS))
def test_kind_as_wiring_is_identical_to_the_old_network(file: str) -> None:
    new, old = _pair(file)
    sparse = SPARSE.get(file)
    if sparse is not None:
        assert new.layer(sparse[0]).is_sparse(sparse[1])
    assert not any(
        layer.is_sparse(k) for n, layer in new.named_children() for k in layer.weight if (n, k) != sparse
    )
    sa, sb = _dense_state(new), old.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the same initial weights and partners, bit for bit
    assert new.layers().keys() == old.layers().keys()

    def same(a: torch.Tensor, b: torch.Tensor) -> None:  # bit for bit, or to float rounding (sparse sums)
        if sparse is None:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    x, y = _batch()
    for labels in (y, None):
        a = new(x, labels, torch.Generator().manual_seed(3))
        b = old(x, labels, torch.Generator().manual_seed(3))
        same(a.readout.theta, b.readout.theta)
        same(a.readout.aggregates, b.readout.aggregates)
        if b.hidden is not None:
            same(a.hidden.aggregates, b.hidden.aggregates)
            assert torch.equal(a.hidden_spikes, b.hidden_spikes)
    a, b = new(x, y, torch.Generator().manual_seed(4)), old(x, y, torch.Generator().manual_seed(4))
    ga, gb = new.local_goals(a), old.local_goals(b)
    assert ga.keys() == gb.keys()
    for k in ga:
        same(ga[k], gb[k])
    (-sum(g.sum() for g in ga.values())).backward()
    (-sum(g.sum() for g in gb.values())).backward()
    pa, pb = dict(new.named_parameters()), dict(old.named_parameters())
    for name, p in pa.items():
        if p.grad is None:
            assert pb[name].grad is None
            continue
        expected = pb[name].grad
        if sparse is not None and name == f"{sparse[0]}.weight.{sparse[1]}":
            # the gradient of each stored value is the dense gradient at its partner
            expected = expected.gather(1, new.layer(sparse[0]).partners(sparse[1]))
        if sparse is None:
            assert torch.equal(p.grad, expected), name
        else:
            torch.testing.assert_close(p.grad, expected, rtol=1e-4, atol=1e-6, msg=name)


def test_setup1_trains_to_identical_metrics_before_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old network in the training loop and the TOML wiring give the same run, bit for bit."""
    import infomorphic.train.loop as loop
    from infomorphic.train import fit

    config = load_config(
        CONFIGS / "setup1.toml", {"epochs": 3, "baselines": [], "threads": 1, "out_dir": str(tmp_path)}
    )
    fit(config, run_dir=tmp_path / "new", progress=False)

    class Legacy(LegacyNetwork):  # the old loop's optimiser settings: hidden, then readout
        def optimizer_settings(self, hidden: tuple, readout: tuple) -> dict:
            return {"hidden": hidden, "readout": readout}

    monkeypatch.setattr(
        loop,
        "build_network",
        lambda c, n_in, n_cls: Legacy(
            n_in, n_cls, "trivariate", setup=1, n_hidden=100, generator=generator(c.seed, "init")
        ),
    )
    fit(config, run_dir=tmp_path / "old", progress=False)
    timing = {"train_seconds", "eval_seconds"}

    def metrics(run: str) -> list[dict]:
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in timing} for line in lines]

    assert metrics("new") == metrics("old")
    with np.load(tmp_path / "new" / "atoms.npz") as a, np.load(tmp_path / "old" / "atoms.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


# ------------------------------------------------------------------- wiring errors
def _layer(name: str, inputs: dict, **kw) -> dict:  # noqa: ANN003
    return {"name": name, "neurons": kw.pop("neurons", 4), "inputs": inputs, **kw}


READOUT = _layer(
    "readout",
    {"F": "h", "C": {"from": "label", "weights": "identity"}},
    neurons="classes",
    goal="readout",
    sample=False,
)
H = _layer("h", {"F": "input", "C": "label"}, goal="{F}{C}")

BAD = [
    (
        "unknown source",
        [_layer("h", {"F": "inptu", "C": "label"}, goal="{F}{C}"), READOUT],
        "network layer 'h', key 'inputs.F': unknown source 'inptu'",
    ),
    (
        "cycle",
        [
            _layer("a", {"F": "input", "C": "b"}, goal="{F}{C}"),
            _layer("b", {"F": "a", "C": "label"}, goal="{F}{C}"),
            _layer(
                "readout",
                {"F": "b", "C": {"from": "label", "weights": "identity"}},
                neurons="classes",
                goal="readout",
                sample=False,
            ),
        ],
        "form a cycle (a -> b -> a)",
    ),
    (
        "own current output",
        [_layer("h", {"F": "input", "L": "h"}, goal="{F}{L}"), READOUT],
        "network layer 'h', key 'inputs.L': a layer cannot read its own current output",
    ),
    (
        "goal letters",
        [_layer("h", {"F": "input", "C": "label"}, goal="{F}{C}{L}"), READOUT],
        "network layer 'h', key 'goal'",
    ),
    (
        "five classes",
        [
            _layer(
                "h",
                {"F": "input", "C": "label", "L": "previous:h", "B": "previous:readout", "M": "zeros:2"},
                goal="{F}{C}",
            ),
            READOUT,
        ],
        "network layer 'h', key 'inputs': a layer needs 2 to 4 input classes, got 5",
    ),
    ("one class", [_layer("h", {"F": "input"}, goal="{F}"), READOUT], "needs 2 to 4 input classes, got 1"),
    (
        "no goal",
        [_layer("h", {"F": "input", "C": "label"}), READOUT],
        "network layer 'h', key 'goal': missing",
    ),
    ("readout samples", [H, {**READOUT, "sample": True}], "network layer 'readout', key 'sample'"),
    ("duplicate name", [H, H, READOUT], "network layer 'h', key 'name': used by two layers"),
    ("unknown key", [{**H, "neuron": 3}, READOUT], "network layer 'h', key 'neuron': unknown key"),
    (
        "bad partners",
        [_layer("h", {"F": {"from": "input", "partners": 0}, "C": "label"}, goal="{F}{C}"), READOUT],
        "network layer 'h', key 'inputs.F.partners'",
    ),
    (
        "bad letter",
        [_layer("h", {"f": "input", "C": "label"}, goal="{F}{C}"), READOUT],
        "input classes are single capital letters",
    ),
    ("bad random", [_layer("h", {"F": "random:x", "C": "label"}, goal="{F}{C}"), READOUT], "random:<n>"),
    ("unknown readout", [H, READOUT], "network key 'readout': no layer named 'out'"),
    (
        "activation for four classes on three",
        [
            _layer(
                "h", {"F": "input", "C": "label", "L": "previous:h"}, goal="{F}", activation="quadrivariate"
            ),
            READOUT,
        ],
        "network layer 'h', key 'activation': quadrivariate takes 4 input classes, the layer has 3",
    ),
    (
        "activation for three classes on four",
        [
            _layer(
                "h",
                {"F": "input", "C": "label", "L": "previous:h", "B": "previous:readout"},
                goal="{F}",
                activation="trivariate",
            ),
            READOUT,
        ],
        "network layer 'h', key 'activation': trivariate takes 3 input classes, the layer has 4",
    ),
    (
        "default activation, unknown parameter",
        [H, {**READOUT, "activation_params": {"k9": 1.0}}],
        "network layer 'readout', key 'activation_params': bivariate has no parameter 'k9'; its parameters: k1, k2",
    ),
    (
        "layer named like a source",
        [
            _layer("input", {"F": "input", "C": "label"}, goal="{F}{C}"),
            {**READOUT, "inputs": {"F": "input", "C": "label"}},
        ],
        "network layer 'input', key 'name': must be a lower-case identifier",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_wiring_errors_name_the_layer_and_key(case: tuple) -> None:
    _, layers, message = case
    data = {"layers": layers, **({"readout": "out"} if case[0] == "unknown readout" else {})}
    with pytest.raises(ValueError) as info:
        NetworkSpec.from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_wiring_in_a_toml_config_is_one_line_exit_2(tmp_path: Path) -> None:
    text = (CONFIGS / "deep2.toml").read_text().replace('F = "h1"', 'F = "h3"')
    (tmp_path / "bad.toml").write_text(text)
    res = CliRunner().invoke(
        app, ["train", "--config", str(tmp_path / "bad.toml"), "--out-dir", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: network layer 'h2', key 'inputs.F': unknown source 'h3'")
    assert not (tmp_path / "o").exists()


def test_a_layer_too_large_for_memory_is_refused_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infomorphic.nn.network as network_module

    monkeypatch.setattr(network_module, "_physical_memory_bytes", lambda: 8 * 2**30)
    text = (
        (CONFIGS / "deep2.toml")
        .read_text()
        .replace('C = "label", L = "previous:h1"', 'C = "random:40000000", L = "previous:h1"')
    )
    assert "random:40000000" in text
    (tmp_path / "big.toml").write_text(text)
    res = CliRunner().invoke(
        app, ["train", "--config", str(tmp_path / "big.toml"), "--out-dir", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    # digits: a 4e7 x 64 projection and 100 x 4e7 weights, 4 bytes each: 24.4 GiB
    assert line.startswith(
        "error: network layer 'h1', key 'inputs.C': the network's weights alone need 24.4 GiB "
        "(layer h1: 24.4 GiB, of it class C: 24.4 GiB), more than this machine's 8.0 GiB"
    )
    assert not (tmp_path / "o").exists()


def test_a_config_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    text = (CONFIGS / "deep2.toml").read_text()
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "plain.toml").write_text(text)
    assert load_config(tmp_path / "bom.toml") == load_config(tmp_path / "plain.toml")


def test_a_layer_rejects_an_activation_of_another_class_count() -> None:
    with pytest.raises(ValueError, match="trivariate takes 3 input classes, the layer has 4"):
        InfomorphicLayer(5, {"F": 3, "C": 2, "L": 5, "B": 4}, activation="trivariate")
    with pytest.raises(ValueError, match="trivariate has no parameter 'k1'"):
        InfomorphicLayer(5, {"F": 3, "C": 2, "L": 5}, activation_params={"k1": 0.5})


def test_the_python_builder_rejects_bad_arguments_and_labels_clearly() -> None:
    with pytest.raises(
        ValueError, match="widths must be a list of hidden-layer widths, e.g. \\[100, 100\\], got '100'"
    ):
        stacked("100")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_inputs must be an integer >= 1, got 0"):
        Network(stacked([4]), 0, K)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2, got 1"):
        Network(stacked([4]), D, 1)
    with pytest.raises(TypeError, match="spec must be a NetworkSpec or its dict form, got list"):
        Network([], D, K)  # type: ignore[arg-type]
    # the dict form (a TOML [network] table) and numpy sizes build the same network
    a = Network(stacked([4]).to_dict(), np.int64(D), np.int64(K), generator=torch.Generator().manual_seed(0))
    b = Network(stacked([4]), D, K, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    x = torch.randn(3, D)
    for labels, message in (
        (
            torch.tensor([0, 1, K]),
            f"labels must lie in \\[0, {K}\\) for n_classes = {K}, got min 0 and max {K}",
        ),
        (torch.tensor([0, -1, 1]), "got min -1 and max 1"),
        (torch.tensor([0.0, 1.0, 1.0]), "labels must be integer class indices, got dtype torch.float32"),
        (torch.tensor([0, 1]), "labels must have shape \\(3,\\) for a batch of 3, got \\(2,\\)"),
    ):
        with pytest.raises(ValueError, match=message):
            b(x, labels)
    assert b(x, torch.tensor([0, 1, 1], dtype=torch.int32)).readout.theta.shape == (3, K)


def test_identity_weights_need_matching_sizes() -> None:
    spec = NetworkSpec(
        (
            LayerSpec(
                "h",
                5,
                {"F": InputSpec("input"), "C": InputSpec("label", weights="identity")},
                goal="{F}{C}",
                sample=False,
            ),
        )
    )
    with pytest.raises(ValueError, match="identity weights need as many inputs as neurons"):
        Network(spec, D, K)


def test_spec_round_trips_through_its_dict_form() -> None:
    spec = load_config(CONFIGS / "deep2_feedback.toml").network_spec()
    again = NetworkSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


# ------------------------------------------------------------------- deep networks
def _deep(presentations: int | None = None) -> Network:
    spec = load_config(CONFIGS / "deep2_feedback.toml").network_spec()
    if presentations is not None:
        spec = NetworkSpec(spec.layers, spec.readout, presentations)
    small = NetworkSpec(
        tuple(
            LayerSpec(**{**ls.__dict__, "neurons": 6}) if ls.name != "readout" else ls for ls in spec.layers
        ),
        spec.readout,
        spec.presentations,
    )
    return Network(small, D, K, generator=torch.Generator().manual_seed(0))


def test_deep_network_wires_feedback_and_stacking() -> None:
    net = _deep()
    seen: dict[str, list[dict]] = {"h1": [], "h2": [], "readout": []}
    for name in seen:
        net.layer(name).register_forward_pre_hook(
            lambda mod, args, kw=None, n=name: seen[n].append(dict(args[0]))
        )
    x, y = _batch()
    out = net(x, y, torch.Generator().manual_seed(0))
    assert len(seen["h1"]) == 2 and len(seen["h2"]) == 2 and len(seen["readout"]) == 1
    first, second = seen["h1"]
    assert set(first) == {"F"}  # nothing from a previous presentation yet
    assert set(second) == {"C", "L"}  # F unchanged: its aggregate is reused
    # h1's context in the second presentation is h2's first-presentation output (spikes)
    assert second["C"].shape == (B, 6) and set(second["C"].unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(seen["h2"][1]["F"], out.emitted["h1"])
    assert torch.equal(seen["readout"][0]["F"], out.emitted["h2"])
    assert out.readout.theta.shape == (B, K)
    assert set(net.layers()) == {"h1", "h2", "readout"}


def test_more_presentations_repeat_the_dependency_pass() -> None:
    net = _deep(presentations=3)
    calls = []
    net.layer("h1").register_forward_pre_hook(lambda mod, args: calls.append(set(args[0])))
    x, y = _batch()
    net(x, y, torch.Generator().manual_seed(0))
    assert calls == [{"F"}, {"C", "L"}, {"C", "L"}]


def test_every_layers_gradient_is_local() -> None:
    """d goal_j / d weights is zero outside neuron j's own rows, for every layer of a deep network."""
    net = _deep()
    x, y = _batch(1)
    params = dict(net.named_parameters())
    for name, layer in net.layers().items():
        for j in (0, layer.n_neurons - 1):
            out = net(x, y, torch.Generator().manual_seed(2))
            goal = net.local_goals(out)[name][j]
            grads = torch.autograd.grad(goal, list(params.values()), allow_unused=True)
            for pname, g in zip(params, grads):
                if g is None:
                    continue
                owner = pname.split(".")[0]
                if owner != name:
                    assert torch.count_nonzero(g) == 0, (name, j, pname)
                    continue
                others = torch.ones_like(g, dtype=torch.bool)
                others[j] = False
                assert torch.count_nonzero(g[others]) == 0, (name, j, pname)


def test_deep_network_trains_from_the_command_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(CONFIGS / "deep2.toml"),
            "--epochs",
            "2",
            "--baselines",
            "backprop",
            "--threads",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "deep",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["epochs"] == 2 and 0 <= summary["test_acc"] <= 1  # learning takes ~20 epochs here
    assert (
        summary["baselines"]["backprop"]["epochs"] == 2
        and len(summary["baselines"]["backprop"]["history"]) == 2
    )
    metrics = [json.loads(line) for line in (tmp_path / "deep" / "metrics.jsonl").read_text().splitlines()]
    assert {"h1_goal", "h2_goal", "readout_goal"} <= set(metrics[-1])
    with np.load(tmp_path / "deep" / "atoms.npz") as npz:
        assert npz["h1_atoms"].shape == (2, 100, 18) and npz["h2_atoms"].shape == (2, 100, 18)
    again = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "deep"), "--epochs", "3", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["epochs"] == 3


def test_the_readme_example_wiring_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "readme.toml").write_text(block)
    spec = load_config(tmp_path / "readme.toml").network_spec()
    assert [ls.name for ls in spec.layers] == ["h1", "h2", "readout"]
    net = Network(spec, D, K, generator=torch.Generator().manual_seed(0))
    assert int(net.layer("h2").mask("L").sum(1).max()) == 50  # 50 random lateral partners each
    x, y = _batch()
    assert net(x, y).readout.theta.shape == (B, K)


def test_four_source_feedback_with_silent_feedback_is_the_stacked_network() -> None:
    """stacked(feedback="B") with B weights and biases at zero trains like stacked() (same goals)."""
    from infomorphic.nn.wiring import stacked

    plain = Network(stacked([6, 5]), D, K, generator=torch.Generator().manual_seed(0))
    fb = Network(stacked([6, 5], feedback="B"), D, K, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for name in ("h1", "h2"):
            for letter in "FCL":
                fb.layer(name).weight[letter].copy_(plain.layer(name).weight[letter])
                fb.layer(name).bias[letter].copy_(plain.layer(name).bias[letter])
            fb.layer(name).weight["B"].zero_()
            fb.layer(name).bias["B"].zero_()
        fb.readout.load_state_dict(plain.readout.state_dict())
    x, y = _batch()
    a, b = plain(x, y, torch.Generator().manual_seed(1)), fb(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(a.readout.theta, b.readout.theta)
    ga, gb = plain.local_goals(a), fb.local_goals(b)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-5, atol=1e-6)


def test_goal_search_of_any_layer_of_a_wired_network(tmp_path: Path) -> None:
    runner = CliRunner()
    common = [
        "search",
        "--config",
        str(CONFIGS / "deep2.toml"),
        "--epochs",
        "1",
        "--train-subset",
        "200",
        "--sampler",
        "random",
        "--no-progress",
        "--json",
        "--set",
        "batch_size=100",
    ]
    res = runner.invoke(
        app,
        [*common, "--trials", "2", "--layer", "h2", "--atoms", "{F}{C},{F}{L}", "--out", str(tmp_path / "s")],
    )
    assert res.exit_code == 0, res.output
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert best["layer"] == "h2" and best["sources"] == "FCL" and set(best["params"]) == {"{F}{C}", "{F}{L}"}
    trial_config = json.loads(next((tmp_path / "s" / "trials").glob("trial-*/config.json")).read_text())
    goals = {entry["name"]: entry.get("goal") for entry in trial_config["config"]["wiring"]["layers"]}
    assert goals["h1"] == "trivariate-mnist-tpe" and goals["h2"] != "trivariate-mnist-tpe"
    # best_config.toml: the searched config with the best goal in h2 and nothing else changed
    searched = load_config(CONFIGS / "deep2.toml", {"epochs": 1, "batch_size": 100})
    best_config = load_config(tmp_path / "s" / "best_config.toml")
    layers = {entry["name"]: entry for entry in best_config.wiring["layers"]}
    assert (
        Goal.resolve(layers["h2"]["goal"], "FCL").to_vector() == Goal.resolve(best["goal"], "FCL").to_vector()
    )
    layers["h2"]["goal"] = "trivariate-mnist-tpe"
    assert best_config == searched
    trained = runner.invoke(
        app,
        ["train", "--config", str(tmp_path / "s" / "best_config.toml"), "--baselines", "none"]
        + ["--out-dir", str(tmp_path / "r"), "--name", "best", "--json"],
    )
    assert trained.exit_code == 0, trained.output
    run_config = json.loads((tmp_path / "r" / "best" / "config.json").read_text())["config"]
    assert {e["name"]: e["goal"] for e in run_config["wiring"]["layers"]}["h2"] == best["goal"]
    bad = runner.invoke(app, [*common, "--trials", "1", "--layer", "hidden", "--out", str(tmp_path / "t")])
    assert bad.exit_code == 2
    assert "no layer 'hidden'; its layers: h1, h2, readout" in bad.stderr


MASKED = """
[train]
dataset = "digits"
epochs = 1
batch_size = 512
threads = 1
baselines = []

[network]
[[network.layers]]
name = "h"
neurons = 4
goal = "{F}{C}"
inputs = { F = { from = "input", mask = "masks/h.npy" }, C = "label" }

[[network.layers]]
name = "readout"
neurons = "classes"
goal = "readout"
activation = "bivariate"
binning = "adaptive"
sample = false
inputs = { F = "h", C = { from = "label", weights = "identity" } }
"""


def test_a_relative_mask_file_is_read_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "study" / "masks").mkdir(parents=True)
    mask = (np.arange(4 * 64).reshape(4, 64) % 3 == 0).astype(np.float32)
    np.save(tmp_path / "study" / "masks" / "h.npy", mask)
    (tmp_path / "study" / "net.toml").write_text(MASKED)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the config's folder: the mask was looked for here
    runs = tmp_path / "runs"
    res = CliRunner().invoke(
        app,
        ["train", "--config", "../study/net.toml", "--out-dir", str(runs), "--name", "m", "--json"],
    )
    assert res.exit_code == 0, res.output
    recorded = json.loads((runs / "m" / "config.json").read_text())["config"]["wiring"]
    path = recorded["layers"][0]["inputs"]["F"]["mask"]
    assert Path(path).is_absolute() and Path(path).resolve() == tmp_path / "study" / "masks" / "h.npy"
    # the run resumes (and rebuilds its network) from any folder
    monkeypatch.chdir(tmp_path)
    again = CliRunner().invoke(app, ["train", "--resume", str(runs / "m"), "--epochs", "2", "--json"])
    assert again.exit_code == 0, again.output
    net = build_network(load_config(tmp_path / "study" / "net.toml"), D, K)
    assert torch.equal(net.layer("h").mask("F"), torch.as_tensor(mask))


@pytest.mark.parametrize(
    "mask, message",
    [
        ([[1.0] * D] * 3 + [[1.0] * 2], "the mask must be a (neurons, inputs) array of 0 and 1"),
        ([["a"] * D] * 4, "the mask must be a (neurons, inputs) array of 0 and 1"),
        ("text.npy", "is not a .npy file of numbers; write one with numpy.save"),
        ("arrays.npz", "is a .npz archive; give one array as a .npy file"),
    ],
    ids=["ragged", "strings", "not-npy", "npz"],
)
def test_a_bad_mask_is_one_line_naming_the_layer_and_key(tmp_path: Path, mask: object, message: str) -> None:
    (tmp_path / "text.npy").write_text("0 1 0 1\n")
    np.savez(tmp_path / "arrays.npz", a=np.ones((4, D)))
    if isinstance(mask, str):
        mask = str(tmp_path / mask)
    spec = NetworkSpec.from_dict(
        {
            "layers": [
                _layer("h", {"F": {"from": "input", "mask": mask}, "C": "label"}, goal="{F}{C}", neurons=4),
                READOUT,
            ]
        }
    )
    with pytest.raises(ValueError) as info:
        Network(spec, D, K)
    text = str(info.value)
    assert text.startswith("network layer 'h', key 'inputs.F': ") and message in text, text
    assert "\n" not in text and "pickle" not in text
