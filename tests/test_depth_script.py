"""experiments/depth.py: the TOML configs it writes for every row are read back by
``infomorphic train --config`` as the same wiring, and a run another process holds is left to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from experiment_scripts import load_experiment

from infomorphic.config import load_config
from infomorphic.runs import claim_run_dir
from infomorphic.train.loop import build_network

depth = load_experiment("depth", "depth_script")


@pytest.mark.parametrize("variant", depth.VARIANTS)
@pytest.mark.parametrize(("layers", "width"), [(1, 12), (2, 12), (3, 12), (2, 150)])
def test_every_row_config_reads_back_as_its_wiring(
    tmp_path: Path, variant: str, layers: int, width: int
) -> None:
    network = depth.wiring(layers, width, variant)
    path = tmp_path / "configs" / "row.toml"
    depth.write_config(
        path,
        {"dataset": "digits", "epochs": 3, "seed": 1, "atoms_every": 4, "baselines": ["backprop"]},
        network,
    )
    config = load_config(path, {})
    assert (config.dataset, config.epochs, config.seed, config.atoms_every) == ("digits", 3, 1, 4)
    assert config.wiring == network
    net = build_network(config, 64, 10)
    hidden = [name for name in net.layers() if name != "readout"]
    assert hidden == [f"h{i + 1}" for i in range(layers)]
    top = net.layers()[hidden[-1]]
    assert len(top.in_features) == (4 if variant.startswith("feedback-b") else 3)
    # 100 random lateral partners per neuron above width 100, every other neuron below
    partners = (top.effective_weight("L") != 0).sum(1)
    assert partners.tolist() == [100 if width > 100 else width - 1] * width


def test_a_row_run_that_another_process_holds_is_left_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "digits-w12-d2-stacked-seed0"
    with claim_run_dir(run, resume=False):
        assert depth.run_one(tmp_path, "digits", 12, 2, "stacked", 0, 1, 1) == "busy"
    assert '"skipped"' in capsys.readouterr().err
    assert not (tmp_path / "configs").exists()  # nothing written for a run it leaves alone


def test_markdown_table_lists_finished_seeds_and_running_ones(tmp_path: Path) -> None:
    """``--markdown``: median (min-max) over the seeds that reached the epochs, the twin's seed
    count where it differs, a run still training named beside its row, rows without runs left out."""
    import json

    def run(name: str, accs: list[float], backprop: float | None) -> None:
        folder = tmp_path / name
        folder.mkdir()
        lines = [json.dumps({"epoch": e + 1, "test_acc": a}) for e, a in enumerate(accs)]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        if backprop is not None:
            (folder / "baselines.json").write_text(json.dumps({"backprop": {"test_acc": backprop}}))

    run("mnist-w100-d2-stacked-seed0", [0.5, 0.9501], 0.97)
    run("mnist-w100-d2-stacked-seed1", [0.5, 0.9480], 0.96)
    run("mnist-w100-d2-stacked-seed2", [0.5, 0.9533], None)  # its twin still training
    run("mnist-w100-d3-stacked-seed0", [0.5], None)  # one epoch of two
    rows = [("mnist", 100, d, "stacked") for d in (1, 2, 3)]
    table = depth.markdown_table(tmp_path, rows, [0, 1, 2], 2).splitlines()
    assert table[2:] == [
        "| MNIST | width 100, depth 2, stacked | 0, 1, 2 | 95.01% (94.80-95.33) "
        "| 96.50% (96.00-97.00) (2 of 3 seeds) |",
        "| MNIST | width 100, depth 3, stacked | (seed 0 at epoch 1) |  |  |",
    ]


def test_class_selectivity_against_the_sums_of_squares() -> None:
    """eta squared per neuron: 1 for a class detector, 0 for a class-blind neuron, and the
    between / total sums of squares of numpy for an arbitrary one."""
    import torch

    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (500,), generator=gen)
    detector = (y == 2).double()
    blind = torch.arange(500).double() % 2  # the same mean in every class up to sampling
    mixed = torch.rand(500, generator=gen, dtype=torch.float64) + 0.3 * y
    constant = torch.full((500,), 0.7, dtype=torch.float64)
    eta = depth.class_selectivity(torch.stack([detector, blind, mixed, constant], 1), y, 4)
    t, labels = mixed.numpy(), y.numpy()
    between = sum((labels == c).sum() * (t[labels == c].mean() - t.mean()) ** 2 for c in range(4))
    expected = between / ((t - t.mean()) ** 2).sum()
    assert eta[0] == pytest.approx(1.0)
    assert eta[1] < 0.02
    assert eta[2] == pytest.approx(expected, rel=1e-12)
    assert eta[3] == 0.0


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("stacked", []),
        ("feedback-c", [("h1", "C"), ("h2", "C")]),
        ("feedback-b", [("h1", "B"), ("h2", "B")]),
        ("label-first", [("h2", "C")]),
    ],
)
def test_feedback_classes_are_the_inputs_from_a_higher_layer(variant: str, expected: list) -> None:
    """Lateral inputs (a layer's own previous output) are not feedback; the layer above's and the
    readout's previous outputs are."""
    config_network = depth.wiring(2, 12, variant)
    from infomorphic.config import TrainConfig

    config = TrainConfig(dataset="digits", network="custom", wiring=config_network)
    net = build_network(config, 64, 10)
    assert depth.feedback_classes(net) == expected


def test_analyse_a_trained_feedback_run(tmp_path: Path) -> None:
    """--analyse on a short digits run with feedback: a selectivity in [0, 1] per layer, the
    feedback classes silenced, and the weights of the run directory left as they were."""
    import torch

    from infomorphic.train.loop import fit

    path = tmp_path / "row.toml"
    depth.write_config(
        path,
        {"dataset": "digits", "epochs": 2, "seed": 0, "baselines": []},
        depth.wiring(2, 12, "feedback-b"),
    )
    run = tmp_path / "run"
    fit(load_config(path, {}), run_dir=run, progress=False)
    before = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    result = depth.analyse_run(run)
    assert set(result["selectivity"]) == {"h1", "h2", "readout"}
    assert all(0.0 <= v <= 1.0 for v in result["selectivity"].values())
    assert result["feedback"] == ["h1.B", "h2.B"]
    assert 0.0 <= result["test_acc_without_feedback"] <= 1.0
    after = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    tuning: dict = {}
    depth.analyse_run(run, tuning=tuning)
    assert {k: tuple(v.shape) for k, v in tuning.items()} == {
        "h1": (10, 12),
        "h2": (10, 12),
        "readout": (10, 10),
    }
    assert all(float(v.min()) >= 0.0 and float(v.max()) <= 1.0 for v in tuning.values())
    depth.tuning_figure([run, run], tmp_path / "tuning.png")
    assert (tmp_path / "tuning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    depth.fields_figure([run], tmp_path / "fields.png", count=4)
    assert (tmp_path / "fields.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyse_a_skip_run_measures_each_joined_part(tmp_path: Path) -> None:
    """--analyse on a short digits run whose readout reads h1 and h2 side by side: each part's
    share of the readout's absolute weight (from the checkpoint) and the accuracy without it; the
    network is restored after each silencing (a second analysis gives the same numbers)."""
    import torch

    from infomorphic.train.loop import fit

    path = tmp_path / "row.toml"
    depth.write_config(
        path, {"dataset": "digits", "epochs": 2, "seed": 0, "baselines": []}, depth.wiring(2, 12, "skip")
    )
    run = tmp_path / "run"
    fit(load_config(path, {}), run_dir=run, progress=False)
    result = depth.analyse_run(run)
    parts = result["joined"]["readout.F"]
    assert list(parts) == ["h1", "h2"]
    weight = torch.load(run / "checkpoint.pt", weights_only=False)["model"]["readout.weight.F"].abs()
    assert weight.shape == (10, 24)
    assert parts["h1"]["weight_share"] == pytest.approx(float(weight[:, :12].sum() / weight.sum()))
    assert parts["h1"]["weight_share"] + parts["h2"]["weight_share"] == pytest.approx(1.0)
    assert all(0.0 <= p["test_acc_without"] <= 1.0 for p in parts.values())
    assert any(p["test_acc_without"] != result["test_acc"] for p in parts.values())
    assert depth.analyse_run(run) == result


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("depth", ["--widths", "0"], "argument --widths: must be an integer >= 1, got 0"),
        ("depth", ["--seeds", "-1"], "argument --seeds: must be an integer >= 0, got -1"),
        ("depth", ["--epochs", "x"], "argument --epochs: must be an integer >= 1, got 'x'"),
        ("depth", ["--datasets", "nope"], "argument --datasets: invalid choice: 'nope'"),
        ("depth", ["--atoms-every", "0"], "argument --atoms-every: must be an integer >= 1, got 0"),
        ("depth", ["--out", "FILE"], "--out FILE exists and is not a folder"),
        ("depth", ["--analyse", "FILE"], "error: FILE is not a finished infomorphic run"),
        ("size_sweep", ["--sizes", "0"], "argument --sizes: must be an integer >= 1, got 0"),
        ("size_sweep", ["--workers", "0"], "argument --workers: must be an integer >= 1, got 0"),
        ("size_sweep", ["--dataset", "nope"], "argument --dataset: invalid choice: 'nope'"),
        ("size_sweep", ["--out", "FILE", "--summarise"], "--out FILE exists and is not a folder"),
        ("depth", ["--ledger", "FILE"], "error: FILE is not a valid JSON-lines file (line 1"),
        ("size_sweep", ["--ledger", "FILE"], "error: FILE is not a valid JSON-lines file (line 1"),
        ("depth", ["--ledger", "."], "--ledger . exists and is not a file"),
        ("size_sweep", ["--ledger", ".", "--summarise"], "--ledger . exists and is not a file"),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_work(
    script: str,
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Widths, depths, sizes, seeds, epochs and workers were taken as any integer (a width of 0
    failed every run one by one), an unknown dataset likewise, an --out that is a file raised a
    traceback, and so did --analyse of a folder that holds no run."""
    module = load_experiment(script, f"{script}_args")
    (tmp_path / "FILE").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [f"{script}.py", *args])
    with pytest.raises(SystemExit) as info:
        module.main() if script == "depth" else module.main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "FILE").read_text() == "not a folder"


def test_saved_rows_merge_by_row_and_draw_accuracy_against_depth(tmp_path: Path) -> None:
    import json

    depth = load_experiment("depth", "depth_rows")

    def row(d: int, variant: str, acc: float, epochs: list[int]) -> dict:
        stat = {"median": acc, "min": acc - 0.002, "max": acc + 0.001, "n": len(epochs)}
        return {"dataset": "mnist", "width": 100, "depth": d, "variant": variant, "epochs": epochs}, stat

    rows = []
    for d, variant, acc, epochs in (
        (1, "stacked", 0.95, [100, 100, 100]),
        (2, "stacked", 0.949, [100, 100, 100]),
        (2, "feedback-c", 0.85, [100, 100, 100]),
        (3, "stacked", 0.951, [100, 100, 40]),  # unfinished: not saved
    ):
        base, stat = row(d, variant, acc, epochs)
        rows.append({**base, "infomorphic_test": stat, "backprop_test": {**stat, "median": acc + 0.02}})
    path = tmp_path / "rows.jsonl"
    assert depth.save_rows(path, rows, [0, 1, 2], 100) == 3
    again = [{**rows[1], "infomorphic_test": {"median": 0.96, "min": 0.958, "max": 0.961, "n": 3}}]
    assert depth.save_rows(path, again, [0, 1, 2], 100) == 1  # replaces the row, keeps the others
    saved = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["depth"], r["variant"]) for r in saved] == [(1, "stacked"), (2, "feedback-c"), (2, "stacked")]
    assert saved[2]["infomorphic_test"]["median"] == 0.96 and saved[0]["seeds"] == [0, 1, 2]
    depth.rows_figure(saved, tmp_path / "depth.png")
    assert (tmp_path / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no row with 3 seeds"):
        depth.rows_figure([{**r, "seeds": [0]} for r in saved], tmp_path / "none.png")
