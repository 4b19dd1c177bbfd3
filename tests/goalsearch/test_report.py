"""The HTML report: every section present, every embedded image a decodable PNG, the goal table
complete with meanings, the figures written as files."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from infomorphic.goals import atom_meaning, paper_order
from infomorphic.goalsearch.report import build_report


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"] or "")
        elif tag == "img":
            self.images.append(a["src"] or "")
        elif tag == "tr":
            self.rows += 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, digits_small) -> Path:
    from infomorphic.config import TrainConfig
    from infomorphic.train import fit

    root = tmp_path_factory.mktemp("report")
    config = TrainConfig(
        network="trivariate",
        hidden=6,
        epochs=2,
        batch_size=128,
        baselines=(),
        threads=1,
        dataset="digits",
        train_eval_size=100,
        hidden_goal="trivariate-mnist-tpe",
    )
    fit(config, run_dir=root / "run", progress=False, data=digits_small)
    return root / "run"


@pytest.fixture(scope="module")
def page(trained: Path) -> tuple[Path, str, _Page]:
    path = build_report(trained)
    text = path.read_text()
    parsed = _Page()
    parsed.feed(text)
    return path, text, parsed


def _png(src: str) -> np.ndarray:
    import matplotlib.image as mpimg

    assert src.startswith("data:image/png;base64,")
    data = base64.b64decode(src.split(",", 1)[1], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(io.BytesIO(data), format="png")


def test_report_has_every_section(page) -> None:
    path, _, parsed = page
    assert path == path.parent.parent / "report" / "report.html"
    assert parsed.sections == [
        "goal",
        "learning",
        "atoms-hidden",
        "atoms-readout",
        "fields",
        "readout-fields",
        "confusion",
        "firing",
        "dynamics",
    ]


def test_report_images_decode_as_png_and_exist_as_files(page) -> None:
    path, _, parsed = page
    assert len(parsed.images) == 8
    for src in parsed.images:
        image = _png(src)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert float(image[..., :3].std()) > 0.01  # not a blank canvas
    files = sorted(p.name for p in (path.parent / "figures").glob("*.png"))
    assert files == sorted(
        [
            "learning.png",
            "atoms_hidden.png",
            "atoms_readout.png",
            "fields.png",
            "readout_fields.png",
            "confusion.png",
            "firing.png",
            "dynamics.png",
        ]
    )


def test_report_goal_tables_list_all_atoms_with_meanings(page) -> None:
    _, text, parsed = page
    assert parsed.rows >= (1 + 19) + (1 + 5)  # header + 18 atoms + H_res; header + 4 atoms + H_res
    for name in paper_order("FCL"):
        assert f"<code>{name}</code>" in text
        assert atom_meaning(name, "FCL").replace("'", "&#x27;") in text
    assert "+0.97808" in text and "-0.99350" in text  # published gammas {F}{C}, {F}{L}
    assert re.search(
        r"(?i)cosine similarity to the matching one-vs-all logistic-regression field: "
        r"mean -?\d\.\d{3}",
        text,
    )


def test_report_without_data_skips_what_needs_it(trained: Path, tmp_path: Path) -> None:
    path = build_report(trained, tmp_path / "nodata", with_data=False)
    parsed = _Page()
    parsed.feed(path.read_text())
    assert "readout-fields" in parsed.sections and "firing" in parsed.sections
    assert len(parsed.images) == 6  # no firing and no readout-field figure
    for src in parsed.images:
        _png(src)


def test_report_rejects_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing config.json"):
        build_report(tmp_path)


def test_report_confusion_matrix_agrees_with_the_header(trained: Path, page) -> None:
    """The matrix is the one training stored, not a new stochastic pass: its accuracy is the header's."""
    from infomorphic.goalsearch.report import _firing_and_confusion, load_run
    from infomorphic.runs import read_jsonl

    _, text, _ = page
    run = load_run(trained)
    assert run.confusion is not None and run.epoch == 2
    _, confusion = _firing_and_confusion(run)
    assert confusion is not None and confusion.sum() == len(run.data.test.y)
    acc = np.trace(confusion) / confusion.sum()
    assert acc == pytest.approx(
        read_jsonl(trained / "metrics.jsonl")[-1]["test_acc"], abs=1e-6
    )  # float32 mean
    header = re.search(r"Test accuracy (\d+\.\d+)%", text)
    assert header is not None and header.group(1) == f"{100 * acc:.2f}"
    no_data = load_run(trained, with_data=False)
    assert np.array_equal(_firing_and_confusion(no_data)[1], confusion)


def test_field_figures_have_one_labelled_symmetric_colour_scale() -> None:
    from infomorphic.goalsearch.report_plots import fields_figure, similarity_figure

    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 16)) * np.arange(1, 6)[:, None]
    fig = fields_figure(w, (4, 4), "test", value="feedforward weight")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 5
    lim = float(np.abs(w).max())
    assert {im.get_clim() for im in images} == {(-lim, lim)}
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()] == ["feedforward weight"]  # one colour bar
    fig = similarity_figure(w[:3], -w[:3] / 10, (4, 4), np.ones(3), ["a", "b", "c"])
    assert {ax.get_ylabel() for ax in fig.axes} == {
        "",
        "readout weight",
        "logistic-regression\nweight",
        "cosine similarity",
    }
    l3 = float(np.abs(w[:3]).max())
    climits = sorted({im.get_clim() for ax in fig.axes for im in ax.get_images()})
    assert climits == [pytest.approx((-l3, l3)), pytest.approx((-l3 / 10, l3 / 10))]


def test_atom_figure_of_a_four_source_layer_shows_the_largest_atoms_and_a_heatmap_of_all() -> None:
    """166 atoms were 167 unreadable panels (and minutes of drawing): now the 14 largest at the end
    and H_res as panels, and every atom's mean per epoch as one heatmap row."""
    from infomorphic.goalsearch.report_plots import ATOM_PANELS, atoms_figure
    from infomorphic.pid.lattice import get_lattice

    names = get_lattice(4).names("FCLB")
    assert len(names) == 166
    rng = np.random.default_rng(0)
    atoms = rng.normal(scale=0.001, size=(6, 5, 166))
    big = [3, 40, 100]
    atoms[..., big] += np.array([0.5, -0.3, 0.2])  # the largest atoms at the last epoch
    fig = atoms_figure(atoms, rng.uniform(size=(6, 5)), names, "h2")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    panels = [t for t in titles if not t.startswith("every atom")]
    assert len(panels) == ATOM_PANELS + 1 and panels[-1] == "H_res"
    assert {names[k] for k in big} <= set(panels)
    (heat,) = [ax for ax in fig.axes if ax.get_title().startswith("every atom")]
    (image,) = heat.get_images()
    np.testing.assert_allclose(image.get_array(), atoms.mean(1).T)
    assert [t.get_text() for t in heat.get_yticklabels()] == list(names)
    three = atoms_figure(atoms[..., :18], rng.uniform(size=(6, 5)), get_lattice(3).names("FCL"), "h1")
    assert len([ax for ax in three.axes if ax.get_title()]) == 19  # every atom and H_res, no heatmap


def test_report_reuses_the_logistic_weights_that_training_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report refitted the logistic baseline for its readout-field comparison on every call
    (about a minute on MNIST); training now keeps the weights, the same as a refit gives."""
    import infomorphic.train.baselines as baselines
    from infomorphic.config import TrainConfig
    from infomorphic.goalsearch.report import _firing_and_confusion, _readout_fields, load_run
    from infomorphic.runs import load_npz
    from infomorphic.train import fit

    config = TrainConfig(
        network="single", epochs=1, batch_size=128, baselines=("logistic",), threads=1, dataset="digits"
    )
    fit(config, run_dir=tmp_path / "run", progress=False)
    kept = load_npz(tmp_path / "run" / "logistic.npz")
    run = load_run(tmp_path / "run")
    refit = baselines.fit_logistic(run.data.train.x, run.data.train.y, 10, l2=config.logistic_l2)
    np.testing.assert_allclose(kept["weight"], refit.weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(kept["bias"], refit.bias.detach().numpy(), atol=1e-5)

    def no_refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("refitted although the run keeps the weights")

    monkeypatch.setattr(baselines, "fit_logistic", no_refit)
    fields = _readout_fields(run, _firing_and_confusion(run)[0])
    assert fields is not None
    np.testing.assert_array_equal(fields[1], kept["weight"])
    (tmp_path / "run" / "logistic.npz").write_bytes(b"damaged")
    monkeypatch.undo()
    fields = _readout_fields(run, _firing_and_confusion(run)[0])  # refits instead
    assert fields is not None
    np.testing.assert_allclose(fields[1], kept["weight"], atol=1e-5)
