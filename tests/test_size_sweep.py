"""The size sweep (experiments/size_sweep.py) and the model options it selects: the paper's random
baseline (a frozen step-function hidden layer), adaptive hidden binning, the readout alone, and
the paper's backprop benchmark (train/baselines.py: PaperBackpropNetwork)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch
from experiment_scripts import load_experiment

from infomorphic.config import TrainConfig
from infomorphic.nn.functional import lateral_mask, step_activation
from infomorphic.nn.network import InfomorphicNetwork
from infomorphic.runs import load_checkpoint, read_json, read_jsonl
from infomorphic.train import fit
from infomorphic.train.baselines import PaperBackpropNetwork
from infomorphic.train.loop import build_network

sweep = load_experiment("size_sweep")

# a tiny grid: digits, 1 epoch, 2 seeds of the frozen random layer (N = 3) and of the readout alone
ARGS = [
    "--dataset",
    "digits",
    "--models",
    "random",
    "readout",
    "--sizes",
    "3",
    "--seeds",
    "0",
    "1",
    "--epochs",
    "1",
    "--set",
    "batch_size=256",
]
RUNS = ("digits-random-n3-seed0", "digits-random-n3-seed1", "digits-readout-seed0", "digits-readout-seed1")


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("sweep")
    rows = sweep.main([*ARGS, "--out", str(out), "--figure", str(out / "fig.png")])
    return out, rows


def test_run_names() -> None:
    assert sweep.run_name("mnist", "setup1", 100, 2) == "mnist-setup1-n100-seed2"
    assert sweep.run_name("mnist", "readout", 100, 0) == "mnist-readout-seed0"
    assert sweep.sizes_of("readout", [1, 2]) == [None]
    assert sweep.sizes_of("lateral-heuristic", [1, 2]) == [1, 2]
    # setup 2 with N <= 101 is setup 1 (every other neuron a partner): it shares setup 1's run
    assert sweep.run_name("mnist", "setup2", 101, 0) == "mnist-setup1-n101-seed0"
    assert sweep.run_name("mnist", "setup2", 102, 0) == "mnist-setup2-n102-seed0"
    assert "--set setup=1" in " ".join(sweep.command(Path("/x"), "mnist", "setup2", 50, 0, 1, 1))
    assert "--set setup=2" in " ".join(sweep.command(Path("/x"), "mnist", "setup2", 500, 0, 1, 1))


def test_command_of_a_new_run_and_of_an_existing_one(tmp_path: Path) -> None:
    cmd = sweep.command(tmp_path, "mnist", "lateral-heuristic", 100, 1, 20, 1, ["batch_size=512"])
    text = " ".join(cmd)
    assert "--resume" not in cmd
    for part in (
        "--hidden 100",
        "--seed 1",
        "--epochs 20",
        "--threads 1",
        "--set network=bivariate-lateral",
        "--set hidden_goal=bivariate-lateral-naive",
        "--set hidden_binning=adaptive",
        "--set batch_size=512",
        "--name mnist-lateral-heuristic-n100-seed1",
    ):
        assert part in text
    run = tmp_path / "mnist-lateral-heuristic-n100-seed1"
    run.mkdir()
    (run / "config.json").write_text("{}")
    cmd = sweep.command(tmp_path, "mnist", "lateral-heuristic", 100, 1, 20, 1)
    assert cmd[1:4] == ["train", "--resume", str(run)]
    assert "--set" not in cmd


def test_rows_are_the_median_and_range_of_the_run_summaries(swept: tuple[Path, list[dict[str, Any]]]) -> None:
    out, rows = swept
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(RUNS)
    assert [(r["model"], r["N"]) for r in rows] == [("random", 3), ("readout", None)]
    with (out / "size_sweep.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [(t["model"], t["N"]) for t in table] == [("random", "3"), ("readout", "")]
    for row, record in zip(rows, table):
        names = [n for n in RUNS if n.startswith(f"digits-{row['model']}-")]
        summaries = [read_json(out / n / "summary.json") for n in names]
        assert row["runs"] == row["finished"] == 2 and row["seeds"] == [0, 1] and row["epochs"] == [1, 1]
        for part in ("test", "train", "val"):
            values = [s[f"{part}_acc"] for s in summaries]
            assert values[0] != values[1] or part == "train"  # two seeds, two results
            expected = {"median": statistics.median(values), "min": min(values), "max": max(values)}
            assert row[part] == pytest.approx(expected)
            for stat, value in expected.items():
                assert float(record[f"{part}_{stat}"]) == pytest.approx(value)
        # the readout's inversion decided from the training labels: from the same summaries
        values = [s["test_acc_class_inversion"] for s in summaries]
        expected = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        assert row["test_class_inversion"] == pytest.approx(expected)
        for stat, value in expected.items():
            assert float(record[f"test_class_inversion_{stat}"]) == pytest.approx(value)
        # neither has a trained hidden layer whose weight change (appendix Fig. 4) is tracked
        assert row["weight_change_median"] is None
    png = (out / "fig.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    again = sweep.main(
        [
            *ARGS,
            "--out",
            str(out),
            "--summarise",
            "--figure",
            str(out / "c.png"),
            "--figure-inversion",
            "class",
        ]
    )
    assert again == rows and (out / "c.png").read_bytes() != png
    with pytest.raises(ValueError, match="inversion must be"):
        sweep.figure(rows, out / "x.png", inversion="mean")


def test_finished_runs_are_reused_and_unfinished_ones_resumed(
    swept: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, rows = swept
    stamps = {n: (out / n / "summary.json").stat().st_mtime_ns for n in RUNS}
    again = sweep.main([*ARGS, "--out", str(out)])
    assert again == rows
    assert {n: (out / n / "summary.json").stat().st_mtime_ns for n in RUNS} == stamps
    assert sweep.run_one(out, "digits", "random", 3, 0, epochs=1, threads=1) == "reused"

    # an unfinished run (no summary yet) is continued from its checkpoint, not started afresh
    run = out / "digits-random-n3-seed1"
    before = read_jsonl(run / "metrics.jsonl")
    (run / "summary.json").unlink()
    assert sweep.run_result(run)["finished"] is False
    # a run still training counts in the rows at its last epoch, but not in rows of finished runs
    # (--finished-only, and the rows --claims decides on)
    assert sweep.summarise_row(out, "digits", "random", 3, [0, 1], epochs=1)["seeds"] == [0, 1]
    final = sweep.summarise_row(out, "digits", "random", 3, [0, 1], epochs=1, finished_only=True)
    assert final["seeds"] == [0] and final["runs"] == final["finished"] == 1
    assert final["test"]["median"] == read_json(out / "digits-random-n3-seed0" / "summary.json")["test_acc"]
    assert sweep.run_one(out, "digits", "random", 3, 1, epochs=2, threads=1) == "trained"
    after = read_jsonl(run / "metrics.jsonl")
    assert len(after) == 2 and after[0] == before[0]
    assert read_json(run / "summary.json")["epochs"] == 2
    row = sweep.summarise_row(out, "digits", "random", 3, [0, 1])
    assert row["epochs"] == [1, 2] and row["finished"] == 2
    # finished, but with fewer epochs than asked: not a final run of a 2-epoch sweep
    assert sweep.summarise_row(out, "digits", "random", 3, [0, 1], epochs=2, finished_only=True)["seeds"] == [
        1
    ]


def test_figure_zooms_into_the_large_layers(tmp_path: Path) -> None:
    """From two sizes >= ZOOM_FROM on, a third panel (below the first two, legend beside it)
    shows the test accuracy there on its own axis; without them the figure is one row."""

    def rows(sizes: list[int]) -> list[dict[str, Any]]:
        stats = {"median": 0.95, "min": 0.94, "max": 0.96}
        return [
            {"model": m, "N": n, "test": stats, "train": stats} for m in ("setup1", "random") for n in sizes
        ]

    def height(path: Path) -> int:
        png = path.read_bytes()
        assert png.startswith(b"\x89PNG")
        return int.from_bytes(png[20:24], "big")  # the IHDR chunk: width, then height

    sweep.figure(rows([10, 50]), tmp_path / "one.png")
    sweep.figure(rows([10, sweep.ZOOM_FROM, 2 * sweep.ZOOM_FROM]), tmp_path / "two.png")
    assert height(tmp_path / "two.png") > 1.8 * height(tmp_path / "one.png")


def test_summarise_only_reads(tmp_path: Path) -> None:
    rows = sweep.main(
        [*ARGS, "--out", str(tmp_path / "none"), "--summarise", "--csv", str(tmp_path / "r.csv")]
    )
    assert [r["runs"] for r in rows] == [0, 0] and all(r["test"] is None for r in rows)
    assert not (tmp_path / "none").exists()
    assert (tmp_path / "r.csv").read_text().count("\n") == 3


def test_no_figure_of_no_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A figure asked of a sweep without runs (or, with --finished-only, without finished ones)
    is not drawn as empty axes: one line says why, and no file is written."""
    figures = ["--figure", str(tmp_path / "f.png"), "--convergence-figure", str(tmp_path / "c.png")]
    out = ["--out", str(tmp_path / "none"), "--summarise", "--csv", str(tmp_path / "r.csv")]
    sweep.main([*ARGS, *out, *figures])
    assert "no runs of these models, sizes and seeds" in capsys.readouterr().err
    sweep.main([*ARGS, *out, "--finished-only", *figures])
    assert "no finished runs of these models" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists() and not (tmp_path / "c.png").exists()


def test_markdown_without_runs_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = sweep.main([*ARGS, "--out", str(tmp_path / "none"), "--markdown"])
    out, err = capsys.readouterr()
    assert all(r["runs"] == 0 for r in rows) and out == ""
    assert "no runs of these models, sizes and seeds in" in err and "nothing to tabulate" in err
    assert not (tmp_path / "none").exists()


# ------------------------------------------------------------------ the text's claims, checked


def _row(model: str, n: int, test: float, change: float | None = None) -> dict[str, Any]:
    return {
        "model": model,
        "N": n,
        "test": {"median": test, "min": test, "max": test},
        "weight_change_median": change,
    }


def _paper_like() -> list[dict[str, Any]]:
    """A sweep shaped as the text describes it: setup 1 level with backprop up to 100, peaking at
    500; setup 2 rising to 2000; setup 3 within half a point of setup 2 from 500 on; every
    baseline below every trivariate setup; setup 1's weights moving more beyond 500."""
    rows = []
    for i, n in enumerate(sweep.PAPER_SIZES):
        s1 = {1000: 0.850, 2000: 0.840}.get(n, 0.5 + 0.05 * i)
        s2 = 0.5 + 0.05 * i
        rows += [
            _row("setup1", n, s1, {500: 1e-3, 1000: 2e-3, 2000: 4e-3}.get(n, 1e-3)),
            _row("setup2", n, s2),
            _row("setup3", n, s2 - 0.004 if n >= 500 else s2 - 0.02),
            _row("backprop", n, s1 + 0.005 if n <= 100 else s1 + 0.03),
        ]
        rows += [_row(m, n, 0.3 + 0.01 * i - 0.001 * j) for j, m in enumerate(sweep.BASELINES)]
    return rows


def _verdicts(rows: list[dict[str, Any]]) -> dict[str, bool | None]:
    return {c["claim"]: c["holds"] for c in sweep.claims(rows)}


def test_claims_hold_on_a_sweep_shaped_as_the_text_says() -> None:
    checked = sweep.claims(_paper_like())
    assert [c["holds"] for c in checked] == [True] * 6 and all(not c["missing"] for c in checked)
    peak = next(c for c in checked if c["claim"] == "setup1-peaks-at-500")
    assert peak["detail"] == "peak at N = 500 (90.00 %)" and peak["evidence"][2000] == 0.840
    json.dumps(checked)  # printable as one JSON line each


@pytest.mark.parametrize(
    ("claim", "model", "n", "value"),
    [
        ("setup1-matches-backprop", "backprop", 50, 0.95),  # backprop 6 points above at N = 50
        ("setup1-peaks-at-500", "setup1", 1000, 0.96),  # the peak moves to 1000
        ("setup2-rises-to-2000", "setup2", 200, 0.70),  # a dip of 10 points after 100
        ("setup3-close-to-setup2", "setup3", 2000, 0.90),  # 10 points below setup 2
        ("trivariate-beats-baselines", "random", 20, 0.99),  # the random layer wins at 20
    ],
)
def test_each_claim_fails_when_its_curve_says_otherwise(claim: str, model: str, n: int, value: float) -> None:
    rows = [_row(model, n, value) if (r["model"], r["N"]) == (model, n) else r for r in _paper_like()]
    verdicts = _verdicts(rows)
    assert verdicts[claim] is False
    assert sum(v is False for v in verdicts.values()) == 1  # and only that one


def test_the_convergence_claim_reads_the_weight_change() -> None:
    rows = [
        {**r, "weight_change_median": 5e-4} if (r["model"], r["N"]) == ("setup1", 2000) else r
        for r in _paper_like()
    ]
    assert _verdicts(rows)["setup1-converges-less-beyond-500"] is False


def test_a_claim_waits_for_the_sizes_it_needs() -> None:
    rows = [r for r in _paper_like() if not (r["model"] == "setup2" and r["N"] == 2000)]
    checked = {c["claim"]: c for c in sweep.claims(rows)}
    for name in ("setup2-rises-to-2000", "setup3-close-to-setup2", "trivariate-beats-baselines"):
        assert checked[name]["holds"] is None and checked[name]["missing"] == ["setup2@2000"]
    assert checked["setup1-matches-backprop"]["holds"] is True
    # rows without any run (summarise before training) decide nothing
    empty = [{**r, "test": None, "weight_change_median": None} for r in _paper_like()]
    assert all(c["holds"] is None for c in sweep.claims(empty))


def test_a_contradiction_decides_a_claim_before_every_size_is_in() -> None:
    """A gap that no later row can mend makes the claim false at once (its missing rows listed)."""
    rows = [r for r in _paper_like() if (r["model"], r["N"]) not in {("setup1", 100), ("setup2", 2000)}]
    rows = [_row("backprop", 50, 0.95) if (r["model"], r["N"]) == ("backprop", 50) else r for r in rows]
    rows = [_row("random", 20, 0.99) if (r["model"], r["N"]) == ("random", 20) else r for r in rows]
    rows = [_row("setup2", 200, 0.70) if (r["model"], r["N"]) == ("setup2", 200) else r for r in rows]
    checked = {c["claim"]: c for c in sweep.claims(rows)}
    for name in ("setup1-matches-backprop", "trivariate-beats-baselines", "setup2-rises-to-2000"):
        assert checked[name]["holds"] is False and checked[name]["missing"], name
    assert checked["setup3-close-to-setup2"]["holds"] is None  # nothing contradicts it yet
    # setup 1 above its N = 500 at 1000, with 2000 missing: it does not peak at 500
    rows = [r for r in _paper_like() if (r["model"], r["N"]) != ("setup1", 2000)]
    rows = [_row("setup1", 1000, 0.99, 2e-3) if (r["model"], r["N"]) == ("setup1", 1000) else r for r in rows]
    assert _verdicts(rows)["setup1-peaks-at-500"] is False
    rows = [r for r in _paper_like() if (r["model"], r["N"]) != ("setup1", 2000)]
    rows = [
        {**r, "weight_change_median": 1e-4} if (r["model"], r["N"]) == ("setup1", 1000) else r for r in rows
    ]
    assert _verdicts(rows)["setup1-converges-less-beyond-500"] is False


def test_claims_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep.main(
        [*ARGS, "--out", str(tmp_path / "none"), "--summarise", "--claims", "--csv", str(tmp_path / "r.csv")]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    printed = [line for line in lines if "claim" in line]
    assert [c["claim"] for c in printed] == [c["claim"] for c in lines[-1]["claims"]]
    assert len(printed) == 6 and all(c["holds"] is None for c in printed)  # random and readout decide none
    assert "setup1@100" in printed[0]["missing"] and "setup1@5" not in printed[0]["missing"]


def test_markdown_table_of_the_rows() -> None:
    rows = [
        {"model": "setup1", "N": 10, "runs": 3, "test": {"median": 0.787, "min": 0.785, "max": 0.845}},
        {"model": "setup1", "N": 2, "runs": 1, "test": {"median": 0.25, "min": 0.25, "max": 0.25}},
        {"model": "random", "N": 10, "runs": 2, "test": {"median": 0.306, "min": 0.289, "max": 0.334}},
        {"model": "random", "N": 2, "runs": 0, "test": None},
        {"model": "backprop", "N": 50, "runs": 0, "test": None},  # no run: neither column nor line
        {"model": "readout", "N": None, "runs": 3, "test": {"median": 0.919, "min": 0.918, "max": 0.92}},
    ]
    assert sweep.markdown_table(rows, "test", seeds=3).splitlines() == [
        "| N | setup 1 | random |",
        "|---|---|---|",
        "| 2 | 25.0 [1] |  |",
        "| 10 | 78.7 (78.5-84.5) | 30.6 (28.9-33.4) [2] |",
        "",
        "readout alone (no hidden layer): 91.9 (91.8-92.0)",
    ]
    assert sweep.markdown_table(rows, "train", seeds=3) == ""  # no train figures: nothing


def test_markdown_from_the_command_line(
    swept: tuple[Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = swept
    capsys.readouterr()
    rows = sweep.main([*ARGS, "--out", str(out), "--markdown"])  # what the folder holds now
    printed = capsys.readouterr().out
    random_row = next(r for r in rows if r["model"] == "random")["test"]
    cell = f"{100 * random_row['median']:.1f} ({100 * random_row['min']:.1f}-{100 * random_row['max']:.1f})"
    assert printed.count("| N | random |") == 2  # test, then train
    assert f"| 3 | {cell} |" in printed and "readout alone (no hidden layer): " in printed


# ------------------------------------------------------------------ the models the sweep selects


def _digits_config(**changes: Any) -> TrainConfig:
    base = dict(dataset="digits", hidden=6, epochs=1, batch_size=256, baselines=(), train_eval_size=200)
    return TrainConfig(**{**base, **changes})


def test_step_activation_fires_by_the_sign_whatever_the_scale() -> None:
    f = torch.tensor([[-2.0, 0.0, 1e-6, 3.0]])
    assert torch.equal(torch.sigmoid(step_activation(f, torch.ones_like(f))), torch.tensor([[0.0, 0, 1, 1]]))
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(0))
    spikes = []
    for gain, seed in ((1.0, 1), (1.0, 2), (8.0, 3)):
        net = InfomorphicNetwork(
            20,
            4,
            "random-hidden",
            n_hidden=7,
            random_activation="step",
            random_gain=gain,
            generator=torch.Generator().manual_seed(0),
        )
        out = net(x, generator=torch.Generator().manual_seed(seed))
        f = net.layer("hidden").aggregate({"F": x})[..., 0]
        assert torch.equal(out.hidden_spikes, torch.where(f > 0, 1.0, -1.0))
        spikes.append(out.hidden_spikes)
    assert torch.equal(spikes[0], spikes[1]) and torch.equal(spikes[0], spikes[2])


def test_frozen_random_layer_never_changes_and_only_the_readout_trains(tmp_path: Path) -> None:
    config = _digits_config(
        network="random-hidden", random_activation="step", random_gain=1.0, out_dir=str(tmp_path)
    )
    init = build_network(config, 64, 10).state_dict()
    fit(config, run_dir=tmp_path / "r", progress=False)
    state = load_checkpoint(tmp_path / "r" / "checkpoint.pt")["model"]
    hidden = [k for k in init if k.startswith("hidden.")]
    assert hidden and all(torch.equal(state[k], init[k]) for k in hidden)
    assert not torch.equal(state["readout.weight.F"], init["readout.weight.F"])


def test_readout_alone_has_only_the_readout_and_trains_it(tmp_path: Path) -> None:
    config = _digits_config(network="single", out_dir=str(tmp_path))
    net = build_network(config, 64, 10)
    assert list(net.layers()) == ["readout"] and net.layer("readout").in_features["F"] == 64
    init = net.state_dict()
    fit(config, run_dir=tmp_path / "s", progress=False)
    state = load_checkpoint(tmp_path / "s" / "checkpoint.pt")["model"]
    assert set(state) == set(init)
    assert not torch.equal(state["readout.weight.F"], init["readout.weight.F"])


def test_hidden_binning_is_selectable_and_fixed_by_default() -> None:
    assert (
        build_network(_digits_config(network="bivariate-lateral"), 64, 10).layer("hidden").binning == "fixed"
    )
    net = build_network(_digits_config(network="bivariate-lateral", hidden_binning="adaptive"), 64, 10)
    assert net.layer("hidden").binning == "adaptive" and net.layer("readout").binning == "adaptive"
    with pytest.raises(ValueError, match="hidden_binning"):
        _digits_config(hidden_binning="quantile")
    with pytest.raises(ValueError, match="random_activation"):
        _digits_config(random_activation="relu")


def test_paper_backprop_network() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = lateral_mask(5, 2, torch.Generator().manual_seed(1))
    net = PaperBackpropNetwork(12, 3, 5, mask, gen)
    x = torch.randn(40, 12, generator=gen)
    y = torch.randint(0, 3, (40,), generator=gen)
    assert torch.equal(net.lateral.weight * mask, net.lateral.weight)
    out = net(x, torch.Generator().manual_seed(2), y)
    assert out.shape == (40, 3) and bool(((out > 0) & (out < 1)).all())  # probabilities, not logits
    # the label is an input in training only: evaluation does not depend on it
    net.eval()
    a = net(x, torch.Generator().manual_seed(3), y)
    b = net(x, torch.Generator().manual_seed(3), (y + 1) % 3)
    assert torch.equal(a, b)
    net.train()
    # masked lateral weights get no gradient and stay zero under Adam
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for step in range(3):
        loss = torch.nn.functional.cross_entropy(net(x, torch.Generator().manual_seed(step), y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert bool((net.lateral.weight[mask == 0] == 0).all())
    assert bool((net.lateral.weight[mask == 1] != 0).all())
    # the hidden units emit 0/1 forward and pass sigmoid'(A) backward (straight-through)
    seen: dict[str, torch.Tensor] = {}
    net.readout.register_forward_hook(lambda m, i, o: seen.setdefault("y", i[0]))
    net(x, torch.Generator().manual_seed(9), y)
    assert set(seen["y"].unique().tolist()) <= {0.0, 1.0}
    a = torch.randn(30, requires_grad=True)
    theta = torch.sigmoid(a)
    fired = (torch.rand(30) < theta.detach()).float()
    (theta + (fired - theta).detach()).sum().backward()
    assert a.grad is not None and torch.allclose(a.grad, theta.detach() * (1 - theta.detach()))


def test_paper_backprop_in_a_run(tmp_path: Path) -> None:
    config = _digits_config(network="backprop", backprop_variant="paper", out_dir=str(tmp_path))
    fit(config, run_dir=tmp_path / "b", progress=False)
    bp = read_json(tmp_path / "b" / "baselines.json")["backprop"]
    assert bp["variant"] == "paper" and bp["epochs"] == 1
    assert 0 <= bp["train_acc"] <= 1 and len(bp["history"]) == 1
    with pytest.raises(ValueError, match="backprop_variant"):
        _digits_config(network="single", backprop_variant="paper")
    assert json.loads(json.dumps(bp["history"]))[0]["train_acc"] == bp["train_acc"]
