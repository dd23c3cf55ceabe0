"""The discrete-event experiments (experiments/dsi_table, experiments/dsi_servers): quick runs and committed outputs.

Each experiment's ``main`` runs in ``--quick`` mode into a temporary folder; the
tests check that the outputs exist and that the facts the READMEs rely on hold.
The committed ``out/summary.md`` (and figure) come from the full (default) runs: only
their structure and a few robust facts are checked, not their exact numbers; the
CSVs are git-ignored.
"""

import csv
import importlib.util
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from simspec import Scenario, theory
from simspec.des import simulate
from simspec.reference import DSI_PAPER_TABLE

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "experiments/dsi_table"
SERVERS = ROOT / "experiments/dsi_servers"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _name(r: dict) -> tuple:
    return (r["target"], r["drafter"], r["dataset"])


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("dsi_table")
    mod = _load(TABLE / "run.py", "_exp_dsi_table")
    assert mod.main(["--quick", "--out", str(out)]) == 0
    return out, _rows(out / "table.csv")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    out = tmp_path_factory.mktemp("dsi_servers")
    mod = _load(SERVERS / "run.py", "_exp_dsi_servers")
    assert mod.main(["--quick", "--out", str(out)]) == 0
    return out, _rows(out / "servers.csv")


# -- dsi_table ---------------------------------------------------------------------------------------


def test_dsi_table_quick_writes_every_pair_and_setting(table):
    out, rows = table
    text = (out / "summary.md").read_text()
    assert "## S = 50 tokens" in text and "| **mean of the ten** |" in text
    assert len(rows) == len(DSI_PAPER_TABLE) * 3
    for p in DSI_PAPER_TABLE:
        mine = [r for r in rows if _name(r) == (p.target, p.drafter, p.dataset)]
        assert sorted(r["overheads"] for r in mine) == ["msg0.1", "msg1", "none"]
        assert all(float(r["published_dsi_vs_si"]) == p.dsi_vs_si for r in mine)
        assert f"| {p.target} / {p.drafter}, {p.dataset} |" in text


def test_dsi_table_dsi_not_slower_than_si_without_overheads(table):
    _, rows = table
    for r in rows:
        lo, m, hi = float(r["dsi_vs_si_ci_low"]), float(r["dsi_vs_si"]), float(r["dsi_vs_si_ci_high"])
        assert lo < m < hi
        assert 1 <= int(r["si_lookahead"]) <= 20 and 1 <= int(r["dsi_lookahead"]) <= 20
        assert 1 <= int(r["dsi_servers"]) <= 8
        if r["overheads"] == "none":
            assert m >= 0.97, r
            # fewest servers among equal latencies: never more than the no-wait count (which gives identical runs)
            assert int(r["dsi_servers"]) <= int(r["dsi_servers_no_wait_formula"]) or r["dsi_still_waits_at_max"] == "True"


def test_dsi_table_overheads_shrink_dsi_gain_over_colocated_si(table):
    _, rows = table
    by = defaultdict(dict)
    for r in rows:
        by[_name(r)][r["overheads"]] = r
    for name, d in by.items():
        r0, r1, r2 = (float(d[o]["dsi_vs_si"]) for o in ("none", "msg0.1", "msg1"))
        assert r2 < r1 * (1 + 1e-3) and r1 < r0 * (1 + 1e-3) and r2 < r0, name
        assert 0 < float(d["msg1"]["gain_kept"]) < 1, name


def test_des_runs_that_never_queue_are_unchanged_by_more_servers():
    # the rule both experiments use to skip configurations: no task waited -> more servers change nothing
    p = DSI_PAPER_TABLE[0]
    s = Scenario.from_ms(p.target_ms, p.drafter_ms, p.acceptance, tokens=50, lookahead=3)
    n = int(theory.dsi_servers_needed(p.c, 3))
    runs = [simulate(s.replace(servers=m), "dsi", replications=6, rng=4).runs for m in (n, n + 1, None)]
    assert all(r.queueing_delay_ms == 0 for r in runs[0])
    lat = [[r.latency_ms for r in rr] for rr in runs]
    assert lat[0] == lat[1] == lat[2]


def _md_rows(text: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table rows that follow each header line starting with ``header_start``."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(header_start):
            inside = True
        elif inside and line.startswith("|") and not line.startswith("|---"):
            out.append([c.strip() for c in line.strip("|").split("|")])
        elif inside and not line.startswith("|"):
            inside = False
    return out


def test_committed_dsi_table_summary():
    # out/*.csv are git-ignored; the committed summary.md comes from the full (default) run
    text = (TABLE / "out/summary.md").read_text()
    assert "## S = 50 tokens" in text and "## S = 200 tokens" in text
    rows = [r for r in _md_rows(text, "| pair | c | a | published |") if not r[0].startswith("**")]
    assert len(rows) == 2 * len(DSI_PAPER_TABLE)
    names = {f"{p.target} / {p.drafter}, {p.dataset}" for p in DSI_PAPER_TABLE}
    assert {r[0] for r in rows} == names
    for r in rows:
        m, lo, hi = (float(x) for x in r[4].replace("x", "").replace("[", "").replace("]", "").replace(",", "").split())
        assert lo <= m <= hi and hi - lo < 0.06, r  # tight intervals (two decimals in the summary)
        assert m >= 1.0, r  # DSI not slower than SI without overheads
    assert (TABLE / "README.md").exists()


# -- dsi_servers -------------------------------------------------------------------------------------


def _curves(rows):
    cur = defaultdict(dict)
    for r in rows:
        n = np.inf if r["servers"] == "inf" else int(r["servers"])
        cur[(float(r["c"]), float(r["a"]), r["policy"])][n] = r
    return cur


def test_dsi_servers_quick_outputs(servers):
    out, rows = servers
    assert (out / "servers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "summary.md").read_text()
    assert "## Where the curve flattens" in text
    assert " 0 slower runs in " in text  # paired runs: more servers never made a run slower
    assert len(rows) == 6 * 2 * 17


def _check_monotone(rows, tol_best):
    for (c, a, policy), cur in _curves(rows).items():
        ns = sorted(cur)
        lat = [float(cur[n]["latency_per_token_ms"]) for n in ns]
        # k = 1: the same runs at every N, monotone run by run; best k: chosen per N on other replications
        tol = 1e-9 if policy == "k1" else tol_best
        assert all(y <= x * (1 + tol) for x, y in zip(lat, lat[1:])), (c, a, policy, lat)
        # N = 1 is the non-SI chain alone: one target forward per token
        assert float(cur[1]["latency_per_token_ms"]) == pytest.approx(30.0, rel=1e-12)


def test_dsi_servers_latency_non_increasing_in_n(servers):
    _check_monotone(servers[1], tol_best=0.08)  # --quick: 2 search and 4 evaluation replications


def test_dsi_servers_flat_from_closed_form_count(servers):
    _, rows = servers
    for (c, a, policy), cur in _curves(rows).items():
        if policy != "k1":
            continue
        need = int(theory.dsi_servers_needed(c, 1))
        for n in (n for n in cur if np.isfinite(n) and n >= need):
            assert cur[n]["tasks_wait"] == "False"
            assert float(cur[n]["latency_per_token_ms"]) == float(cur[np.inf]["latency_per_token_ms"])
        best = _curves(rows)[(c, a, "best")]
        for n in cur:
            assert float(best[n]["latency_per_token_ms"]) <= float(cur[n]["latency_per_token_ms"]) * 1.03


def test_committed_dsi_servers_outputs():
    text = (SERVERS / "out/summary.md").read_text()
    assert "S = 200 tokens" in text and " 0 slower runs in " in text
    assert len(_md_rows(text, "| c | a | non-SI ms/tok |")) == 6
    for rows in (_md_rows(text, "| c | a | N=1 |"),):
        assert len(rows) == 12  # best k and k = 1, six scenarios each
        for r in rows:
            assert float(r[2]) == 30.0  # N = 1: the chain alone is non-SI
    assert (SERVERS / "out/servers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (SERVERS / "README.md").exists()
