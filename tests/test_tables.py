"""Tests for infomorphic.tables: files of samples / probabilities / pmfs -> joint pmfs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from infomorphic.pid import sx_pid
from infomorphic.pid.distributions import get
from infomorphic.tables import (
    PROBABILITY_COLUMNS,
    Distribution,
    distribution_from_pmf,
    distribution_from_table,
    example_distribution,
    read_distribution,
)

AND_ROWS = [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1)]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_text(columns: list[str], rows: list[tuple[object, ...]]) -> str:
    return "\n".join([",".join(columns), *(",".join(str(v) for v in r) for r in rows)]) + "\n"


def named_atoms(dist: Distribution) -> dict[str, float]:
    return sx_pid(dist.pmf).named(dist.sources)


def prob_rows(pmf: np.ndarray) -> list[tuple[object, ...]]:
    return [(*idx, float(pmf[idx])) for idx in np.ndindex(*pmf.shape)]


# ----------------------------------------------------------------------------- samples
def test_read_distribution_csv_samples_and(tmp_path: Path) -> None:
    path = write(tmp_path / "and.csv", csv_text(["A", "B", "T"], AND_ROWS))
    dist = read_distribution(path)
    assert dist.sources == ("A", "B") and dist.target == "T"
    assert dist.kind == "samples" and dist.n_rows == 4
    np.testing.assert_allclose(dist.pmf, get("and"))
    atoms = named_atoms(dist)
    assert atoms["{A}{B}"] == pytest.approx(0.122556, abs=1e-6)
    assert atoms["{A}"] == pytest.approx(0.188722, abs=1e-6)
    assert atoms["{B}"] == pytest.approx(0.188722, abs=1e-6)
    assert atoms["{AB}"] == pytest.approx(0.311278, abs=1e-6)


def test_read_distribution_pmf_is_read_only(tmp_path: Path) -> None:
    dist = read_distribution(write(tmp_path / "and.csv", csv_text(["A", "B", "T"], AND_ROWS)))
    with pytest.raises(ValueError):
        dist.pmf[0, 0, 0] = 1.0


def test_distribution_from_table_codes_numeric_and_text_values_in_sorted_order() -> None:
    rows = [("10", "b", "no"), ("9", "a", "yes"), ("2", "b", "yes"), ("10", "a", "no")]
    dist = distribution_from_table(["X", "Y", "Z"], rows)
    assert dist.source_values == (("2", "9", "10"), ("a", "b"))
    assert dist.target_values == ("no", "yes")
    assert dist.pmf.shape == (3, 2, 2)
    assert dist.pmf[2, 1, 0] == pytest.approx(0.25)  # X=10, Y=b, Z=no
    assert dist.pmf[1, 0, 1] == pytest.approx(0.25)  # X=9, Y=a, Z=yes


def test_distribution_from_table_repeated_samples_weigh_more() -> None:
    rows = [(0, 0, 0)] * 3 + [(1, 1, 1)]
    dist = distribution_from_table(["A", "B", "T"], rows)
    assert dist.pmf[0, 0, 0] == pytest.approx(0.75)
    assert dist.pmf[1, 1, 1] == pytest.approx(0.25)


def test_distribution_from_table_target_and_sources_choose_axes() -> None:
    # T first, an extra column E that is marginalised out, sources given in reverse order.
    rows = [(t, a, b, e) for (a, b, t) in AND_ROWS for e in (0, 1)]
    dist = distribution_from_table(["T", "A", "B", "E"], rows, target="T", sources=["B", "A"])
    assert dist.sources == ("B", "A")
    np.testing.assert_allclose(dist.pmf, get("and").transpose(1, 0, 2))


def test_distribution_from_table_default_target_skips_listed_sources() -> None:
    rows = [(a, b, t) for (a, b, t) in AND_ROWS]
    dist = distribution_from_table(["A", "T", "B"], [(a, t, b) for a, b, t in rows], sources=["A", "B"])
    assert dist.target == "T"
    np.testing.assert_allclose(dist.pmf, get("and"))


def test_distribution_from_table_names_relabel_sources() -> None:
    dist = distribution_from_table(["A", "B", "T"], AND_ROWS, names=["F", "C"])
    assert dist.sources == ("F", "C")
    assert set(named_atoms(dist)) == {"{F}{C}", "{F}", "{C}", "{FC}"}


def test_distribution_from_table_column_named_p_listed_as_source_is_data() -> None:
    dist = distribution_from_table(["A", "p", "T"], AND_ROWS, sources=["A", "p"])
    assert dist.kind == "samples" and dist.sources == ("A", "p")
    np.testing.assert_allclose(dist.pmf, get("and"))


# ------------------------------------------------------------------------ probabilities
@pytest.mark.parametrize("column", PROBABILITY_COLUMNS)
def test_read_distribution_csv_probability_table_matches_npy(tmp_path: Path, column: str) -> None:
    pmf = get("sum")
    np.save(tmp_path / "sum.npy", pmf)
    table = write(tmp_path / "sum.csv", csv_text(["A", "B", "T", column], prob_rows(pmf)))
    from_npy = read_distribution(tmp_path / "sum.npy", names=["A", "B"])
    from_csv = read_distribution(table)
    assert from_csv.kind == "probabilities"
    np.testing.assert_allclose(from_csv.pmf, from_npy.pmf)
    assert named_atoms(from_csv) == pytest.approx(named_atoms(from_npy), abs=1e-12)
    assert named_atoms(from_csv)["{A}{B}"] == pytest.approx(-0.084963, abs=1e-6)


def test_read_distribution_probability_rows_with_same_cell_add_up(tmp_path: Path) -> None:
    rows = [(0, 0, 0, 0.125), (0, 0, 0, 0.125), (0, 1, 1, 0.25), (1, 0, 1, 0.25), (1, 1, 0, 0.25)]
    dist = read_distribution(write(tmp_path / "xor.csv", csv_text(["A", "B", "T", "p"], rows)))
    np.testing.assert_allclose(dist.pmf, get("xor"))


def test_read_distribution_explicit_prob_column(tmp_path: Path) -> None:
    rows = [(*r, 0.25) for r in AND_ROWS]
    dist = read_distribution(
        write(tmp_path / "and.csv", csv_text(["A", "B", "T", "weight"], rows)), prob_column="weight"
    )
    np.testing.assert_allclose(dist.pmf, get("and"))


def test_read_distribution_normalize_rescales_probabilities(tmp_path: Path) -> None:
    rows = [(*r, 1) for r in AND_ROWS]  # counts, sum 4
    path = write(tmp_path / "and.csv", csv_text(["A", "B", "T", "mass"], rows))
    with pytest.raises(ValueError, match=r"sums to 4, not 1.*--normalize"):
        read_distribution(path)
    np.testing.assert_allclose(read_distribution(path, normalize=True).pmf, get("and"))


def test_read_distribution_npy_normalize(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", 4 * get("xor"))
    with pytest.raises(ValueError, match="sums to 4"):
        read_distribution(tmp_path / "x.npy")
    dist = read_distribution(tmp_path / "x.npy", normalize=True)
    assert dist.sources == ("F", "C") and dist.target == "T"
    np.testing.assert_allclose(dist.pmf, get("xor"))


# ---------------------------------------------------------------------------------- JSON
def test_read_distribution_json_forms_agree_with_csv(tmp_path: Path) -> None:
    from_csv = read_distribution(write(tmp_path / "a.csv", csv_text(["A", "B", "T"], AND_ROWS)))
    records = [dict(zip(["A", "B", "T"], r)) for r in AND_ROWS]
    from_records = read_distribution(write(tmp_path / "r.json", json.dumps(records)))
    table = {"columns": ["A", "B", "T"], "rows": [list(r) for r in AND_ROWS]}
    from_rows = read_distribution(write(tmp_path / "t.json", json.dumps(table)))
    pmf_obj = {"pmf": get("and").tolist(), "sources": ["A", "B"], "target": "T"}
    from_pmf = read_distribution(write(tmp_path / "p.json", json.dumps(pmf_obj)))
    for dist in (from_records, from_rows, from_pmf):
        assert dist.sources == ("A", "B") and dist.target == "T"
        np.testing.assert_allclose(dist.pmf, from_csv.pmf)
        assert named_atoms(dist) == pytest.approx(named_atoms(from_csv), abs=1e-12)


def test_read_distribution_json_probability_records(tmp_path: Path) -> None:
    records = [{"A": a, "B": b, "T": t, "prob": 0.25} for a, b, t in AND_ROWS]
    dist = read_distribution(write(tmp_path / "r.json", json.dumps(records)))
    assert dist.kind == "probabilities"
    np.testing.assert_allclose(dist.pmf, get("and"))


def test_read_distribution_json_pmf_default_labels(tmp_path: Path) -> None:
    dist = read_distribution(write(tmp_path / "p.json", json.dumps({"pmf": get("xor3").tolist()})))
    assert dist.sources == ("F", "C", "L") and dist.target == "T"
    dist = read_distribution(tmp_path / "p.json", names=["X1", "X2", "X3"])
    assert "{X1}{X2,X3}" in named_atoms(dist)


def test_example_distribution_labels() -> None:
    dist = example_distribution("and3", names=["a", "b", "c"])
    assert dist.sources == ("a", "b", "c")
    np.testing.assert_allclose(dist.pmf, get("and3"))
    with pytest.raises(ValueError, match="unknown example 'nope'"):
        example_distribution("nope")


def test_distribution_from_pmf_rejects_object_arrays() -> None:
    with pytest.raises(ValueError, match="real numeric"):
        distribution_from_pmf(np.array([[["a", "b"]]]))


# -------------------------------------------------------------------------------- errors
HEADER = "A,B,T\n"
AND_BODY = "0,0,0\n0,1,0\n1,0,0\n1,1,1\n"

BAD_INPUTS: list[tuple[str, str, str, dict[str, object]]] = [
    ("data.txt", "A,B,T\n0,0,0\n", r"unsupported file type '.txt'; supported: .npy, .csv, .json", {}),
    ("empty.csv", "", "the file is empty", {}),
    ("blank.csv", "\n\n", "the file is empty", {}),
    ("header.csv", HEADER, "no data rows", {}),
    ("short.csv", HEADER + "0,0\n", r"line 2: expected 3 values \(A, B, T\), got 2", {}),
    ("long.csv", HEADER + "0,0,0\n0,0,0,1\n", "line 3: expected 3 values", {}),
    ("empty_cell.csv", HEADER + "0,,1\n", "line 2: column 'B' is empty", {}),
    ("dup.csv", "A,A,T\n0,0,0\n", "duplicate column name.*'A'", {}),
    ("noname.csv", "A,,T\n0,0,0\n", "column 2 of the header has no name", {}),
    (
        "target.csv",
        HEADER + AND_BODY,
        r"target column 'Y' not found; available columns: A, B, T",
        {"target": "Y"},
    ),
    (
        "sources.csv",
        HEADER + AND_BODY,
        r"source columns 'X', 'Z' not found; available columns: A, B, T",
        {"sources": ["A", "X", "Z"]},
    ),
    (
        "both.csv",
        HEADER + AND_BODY,
        "'T' is both the target and a source",
        {"target": "T", "sources": ["A", "T"]},
    ),
    ("twice.csv", HEADER + AND_BODY, "listed twice: 'A'", {"sources": ["A", "A"]}),
    ("one.csv", "A,T\n0,0\n1,1\n", "need between 2 and 4 source columns, got 1", {}),
    ("five.csv", "A,B,C,D,E,T\n0,0,0,0,0,0\n", "need between 2 and 4 source columns, got 5", {}),
    ("nan_p.csv", "A,B,T,p\n0,0,0,abc\n", "line 2: probability column 'p' has a non-numeric value 'abc'", {}),
    ("inf_p.csv", "A,B,T,p\n0,0,0,inf\n", "non-finite", {}),
    (
        "neg_p.csv",
        "A,B,T,p\n0,0,0,1.5\n1,1,1,-0.5\n",
        "line 3: probability column 'p' has negative mass -0.5",
        {},
    ),
    ("sum_p.csv", "A,B,T,p\n0,0,0,0.5\n1,1,1,0.25\n", "sums to 0.75, not 1", {}),
    ("zero_p.csv", "A,B,T,p\n0,0,0,0\n", "sums to 0", {"normalize": True}),
    ("two_p.csv", "A,B,T,p,prob\n0,0,0,1,1\n", "several possible probability columns", {}),
    ("prob_missing.csv", HEADER + AND_BODY, "probability column 'w' not found", {"prob_column": "w"}),
    (
        "prob_source.csv",
        "A,B,T,p\n0,0,0,1\n",
        "probability column and cannot be",
        {"sources": ["A", "p"], "prob_column": "p"},
    ),
    ("comma.csv", "A{,B,T\n0,0,0\n", r"free of '\{'.*--names", {}),
    ("names.csv", HEADER + AND_BODY, "got 3 source labels", {"names": ["X", "Y", "Z"]}),
    ("bad.json", "{not json", "not valid JSON", {}),
    ("scalar.json", "3", "the file holds a int", {}),
    ("empty.json", "[]", "the list of records is empty", {}),
    ("strings.json", '["a", "b"]', "record 1 is a str, not an object", {}),
    ("missing.json", '[{"A": 0, "B": 0, "T": 0}, {"A": 1, "T": 1}]', "record 2 lacks column.*'B'", {}),
    ("nested.json", '[{"A": [0], "B": 0, "T": 0}]', "record 1: column 'A' holds a list", {}),
    ("null.json", '[{"A": null, "B": 0, "T": 0}]', r"record 1: column 'A' is missing \(null\)", {}),
    ("boolp.json", '[{"A": 0, "B": 0, "T": 0, "p": true}]', "non-numeric value True", {}),
    ("unknown.json", '{"data": []}', "unrecognised JSON object with keys 'data'", {}),
    ("extra.json", '{"pmf": [[[1]]], "oops": 1}', "unexpected key.*'oops'", {}),
    ("rowsonly.json", '{"rows": [[0, 0, 0]]}', 'needs exactly the keys "columns" and "rows"', {}),
    ("rowlen.json", '{"columns": ["A", "B", "T"], "rows": [[0, 0]]}', "row 1: expected 3 values", {}),
    ("rowtype.json", '{"columns": ["A", "B", "T"], "rows": [{"A": 0}]}', "row 1: expected a list", {}),
    ("ragged.json", '{"pmf": [[[0.5, 0.5]], [[1]]]}', "numeric array", {}),
    ("pmf1.json", '{"pmf": [[0.5, 0.5]]}', "at least 2 sources", {}),
    ("pmftarget.json", '{"pmf": [[[1]]]}', "only apply to tables", {"target": "T"}),
    ("sources.json", '{"pmf": [[[1]]], "sources": "AB"}', '"sources" must be a list of strings', {}),
]


@pytest.mark.parametrize(
    ("filename", "content", "message", "options"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_read_distribution_rejects_malformed_input(
    tmp_path: Path, filename: str, content: str, message: str, options: dict[str, object]
) -> None:
    path = write(tmp_path / filename, content)
    with pytest.raises(ValueError, match=message) as info:
        read_distribution(path, **options)  # type: ignore[arg-type]
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_read_distribution_npy_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    with pytest.raises(ValueError, match="not a valid .npy array file"):
        read_distribution(tmp_path / "junk.npy")
    np.save(tmp_path / "neg.npy", np.array([[[1.5, -0.5]]]))
    with pytest.raises(ValueError, match="negative mass"):
        read_distribution(tmp_path / "neg.npy")
    np.save(tmp_path / "big.npy", np.full((2,) * 6, 1 / 64))
    with pytest.raises(ValueError, match="at most 4 sources"):
        read_distribution(tmp_path / "big.npy")
    np.save(tmp_path / "ok.npy", get("xor"))
    with pytest.raises(ValueError, match="--sources only apply to tables"):
        read_distribution(tmp_path / "ok.npy", sources=["A", "B"])


def test_read_distribution_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_distribution(tmp_path / "nope.csv")


def test_read_distribution_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("A,B,T\n\xe9,0,0\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_distribution(tmp_path / "latin.csv")
