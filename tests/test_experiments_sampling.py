"""The token-level experiments (experiments/tli_overlap, experiments/rdk_pruning): quick runs and committed outputs.

Each experiment's ``main`` runs in ``--quick`` mode into a temporary folder; the
tests check that the outputs exist and that the facts the READMEs rely on hold:
union ≤ TLI ≤ p(I) and SLEM ≤ SLRS (in every context, and in the means), TLI
falling as overlap falls and as pruning grows, RDK not below TLI at high
pruning and above TLI's cap somewhere, the sparse kernel within its bound.
The committed ``out/summary.md`` and figure come from the full (default) runs:
only their structure and a few robust facts are checked; the CSVs are git-ignored.
"""

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TLI_OVERLAP = ROOT / "experiments/tli_overlap"
RDK_PRUNING = ROOT / "experiments/rdk_pruning"
PNG = b"\x89PNG\r\n\x1a\n"
TOL = 1e-9


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the script runs
    spec.loader.exec_module(mod)
    return mod


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: (v if k in ("seed",) else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def overlap(tmp_path_factory):
    out = tmp_path_factory.mktemp("tli_overlap")
    mod = _load(TLI_OVERLAP / "run.py", "_exp_tli_overlap")
    assert mod.main(["--quick", "--out", str(out)]) == 0
    return out, _rows(out / "tli_overlap.csv")


@pytest.fixture(scope="module")
def pruning(tmp_path_factory):
    out = tmp_path_factory.mktemp("rdk_pruning")
    mod = _load(RDK_PRUNING / "run.py", "_exp_rdk_pruning")
    assert mod.main(["--quick", "--out", str(out)]) == 0
    return out, sorted(_rows(out / "rdk_pruning.csv"), key=lambda r: r["prune"])


# -- tli_overlap -------------------------------------------------------------------------------------


def test_tli_overlap_quick_outputs(overlap):
    out, rows = overlap
    assert (out / "tli_overlap.png").read_bytes()[:8] == PNG
    text = (out / "summary.md").read_text()
    assert "## Drafter closeness 0.7" in text and "## Beside the reference" in text and "## Checks" in text
    assert len(rows) == 3  # one seed, one closeness, word overlaps 1, 0.5, 0
    assert sorted(r["word_overlap"] for r in rows) == [0.0, 0.5, 1.0]


def test_tli_overlap_orderings(overlap):
    _, rows = overlap
    for r in rows:
        # in every context (counted by the script) and in the means
        assert r["union_gt_tli"] == 0 and r["tli_gt_cap"] == 0 and r["slem_gt_slrs"] == 0, r
        assert r["union"] <= r["tli"] + TOL <= r["p_I"] + 2 * TOL, r
        assert r["slem"] <= r["slrs"] + TOL, r
        assert 0 < r["slem"] and r["slrs"] <= 1 + TOL
        # SLRS computes psi exactly (every node); SLEM drafts one path
        assert r["slrs_forwards"] >= r["slem_forwards"] >= 1.0, r


def test_tli_falls_with_overlap(overlap):
    _, rows = overlap
    by = {r["word_overlap"]: r for r in rows}
    assert by[1.0]["overlap"] == 1.0 and by[1.0]["union"] == pytest.approx(by[1.0]["tli"], abs=TOL)
    assert by[1.0]["overlap"] > by[0.5]["overlap"] > by[0.0]["overlap"]
    assert by[1.0]["p_I"] == pytest.approx(1.0, abs=TOL) and by[0.0]["p_I"] < 1.0
    assert by[0.0]["tli"] < by[0.5]["tli"] < by[1.0]["tli"]


def test_committed_tli_overlap_outputs():
    text = (TLI_OVERLAP / "out/summary.md").read_text()
    assert "## Drafter closeness 1 (same text process as the target)" in text and "## Drafter closeness 0.7" in text
    assert "union > TLI in 0, TLI > p(I) in 0, SLEM > SLRS in 0." in text
    same = text.split("## Drafter closeness 1 ")[1].split("## ")[0]
    table = [[c.strip() for c in line.strip("|").split("|")] for line in same.splitlines()
             if line.startswith("| ") and not line.startswith("| word")]
    assert [r[0] for r in table] == ["1", "0.8", "0.6", "0.4", "0.2", "0"]
    assert table[0][3].startswith("1.000")  # same process, same vocabulary: q = p, TLI = 1
    assert float(table[-1][3].split()[0]) < float(table[0][3].split()[0])  # TLI falls with overlap
    assert (TLI_OVERLAP / "out/tli_overlap.png").read_bytes()[:8] == PNG
    assert (TLI_OVERLAP / "README.md").exists()


# -- rdk_pruning -------------------------------------------------------------------------------------


def test_rdk_pruning_quick_outputs(pruning):
    out, rows = pruning
    assert (out / "rdk_pruning.png").read_bytes()[:8] == PNG
    text = (out / "summary.md").read_text()
    assert "## Checks" in text and "| pruned | drafter tokens | cap p(I) | TLI |" in text
    assert [r["prune"] for r in rows] == [0.0, 0.5, 0.75, 0.9, 0.95]
    assert all(r["n_drafter"] < s["n_drafter"] for s, r in zip(rows, rows[1:]))


def test_rdk_pruning_tli_non_increasing_and_capped(pruning):
    _, rows = pruning
    tli = [r["tli"] for r in rows]
    assert all(b <= a + TOL for a, b in zip(tli, tli[1:])), tli
    assert tli[-1] < tli[0] - 0.1
    for r in rows:
        assert r["tli_gt_cap"] == 0 and r["tli"] <= r["p_I"] + TOL, r


def test_rdk_pruning_rdk_vs_tli(pruning):
    _, rows = pruning
    assert rows[0]["rdk_dense"] == pytest.approx(rows[0]["tli"], abs=TOL)  # nothing pruned: OOV-only kernel = identity
    for r in rows:
        if r["prune"] >= 0.75:
            assert r["rdk_dense"] >= r["tli"] - 0.01, r
    assert any(r["rdk_dense"] > r["p_I"] for r in rows)  # only RDK can pass TLI's cap
    assert rows[-1]["rdk_dense"] > rows[-1]["tli"]


def test_rdk_pruning_sparse_within_bound(pruning):
    _, rows = pruning
    for r in rows:
        assert r["sparse_bound_violations"] == 0, r
        assert abs(r["rdk_dense"] - r["rdk_sparse"]) <= r["sparse_bound"] + TOL, r  # bound of the means
        assert 0.0 <= r["sparse_bound"] <= 1.0


def test_committed_rdk_pruning_outputs():
    text = (RDK_PRUNING / "out/summary.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line.split("|")[1].strip().endswith("%")]
    assert [line.split("|")[1].strip() for line in rows] == [
        "0%", "25%", "50%", "60%", "70%", "75%", "80%", "85%", "90%", "95%"]
    assert "Sparse kernel farther from the dense one than its bound: 0 of" in text
    assert "TLI non-increasing in pruning, every seed: yes." in text
    assert (RDK_PRUNING / "out/rdk_pruning.png").read_bytes()[:8] == PNG
    assert (RDK_PRUNING / "README.md").exists()
