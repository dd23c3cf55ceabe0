"""One deployment, one planner, one record family: regression tests for the answers that were wrong.

Each test names the defect it pins (issue 7, "wrong or misleading answers found").
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simspec import (
    PAPER_SERVERS,
    ConstantLatency,
    Deployment,
    Estimate,
    IIDAcceptance,
    InvalidParameterError,
    LatencyBase,
    Overheads,
    Scenario,
    TraceAcceptance,
    UnsupportedScenarioError,
    best_lookahead,
    compare,
    dsi_lookahead_options,
    simulate,
    theory,
)
from simspec.cli import main
from simspec.planner import _pick, des_candidates


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- one definition of servers -------------------------------------------------------------------------------


def test_servers_count_every_target_instance_the_chains_included():
    s = Scenario.from_ms(40.0, 6.0, 0.75)
    with_chain = dsi_lookahead_options(s.replace(servers=3))
    without = dsi_lookahead_options(s.replace(servers=3, chain=False))
    ks = np.arange(1, s.k_max + 1)
    spec = np.ceil(1.0 / (ks * 0.15) - 1e-9).astype(int)
    assert np.array_equal(with_chain.servers, spec + 1)
    assert np.array_equal(without.servers, spec)
    assert np.array_equal(with_chain.feasible, spec + 1 <= 3)
    assert np.array_equal(without.feasible, spec <= 3)
    assert Deployment(servers=3).speculation_servers == 2 and Deployment(servers=3, chain=False).speculation_servers == 3


def test_startup_overhead_counts_in_the_no_wait_servers():
    s = Scenario.from_ms(30.0, 3.0, 0.8, servers=None, overheads=Overheads(startup_ms=30.0))
    # a task holds a server for start-up + verification = 60 ms; one arrives every k*d = 3k ms
    need = dsi_lookahead_options(s).servers
    assert need[0] == 20 + 1 and need[9] == 2 + 1


def test_no_chain_servers_flow_into_compare_and_simulate(capsys):
    """Defect 1: --servers ignored --no-chain (refused k=7 on 1 server, reported 1 server for 2, simulate took k=200)."""
    code, out, _ = run_cli(capsys, "compare", "--target-ms", "40", "--drafter-ms", "6", "--acceptance", "0.75",
                           "--servers", "1", "--no-chain", "--json")
    d = json.loads(out)
    assert code == 0 and d["dsi"]["lookahead"] == 7 and d["dsi"]["target_servers"] == 1
    code, out, _ = run_cli(capsys, "compare", "--target-ms", "40", "--drafter-ms", "6", "--acceptance", "0.75",
                           "--servers", "2", "--no-chain", "--json")
    d = json.loads(out)
    k = d["dsi"]["lookahead"]
    assert d["dsi"]["target_servers"] == math.ceil(1 / (k * 0.15) - 1e-9) <= 2 and k == 4
    code, out, _ = run_cli(capsys, "simulate", "--algorithm", "dsi", "--target-ms", "40", "--drafter-ms", "6",
                           "--acceptance", "0.75", "--servers", "1", "--no-chain", "--replications", "3", "--json")
    d = json.loads(out)
    assert d["lookahead"] == 7 and d["tasks_queued"] == 0
    assert d["latency_per_token_ms"] < 40.0 * 0.6  # about 21.7 ms/token, not 310


def test_simulate_best_on_one_server_with_the_chain_says_dsi_is_nonsi():
    """Defect 2: simulate --servers 1 silently picked k=200 and thousands of wasted drafter forwards."""
    s = Scenario.from_ms(30.0, 3.0, 0.8, servers=1, tokens=200)
    res = simulate(s, "dsi", replications=2, rng=0)
    assert res.lookahead != s.k_max and "no verification task can run" in res.notes
    assert res.latency_per_token_ms.mean == pytest.approx(30.0)
    assert "DSI is non-SI here" in str(res)


def test_simulate_best_under_queueing_searches_with_the_des():
    """When no lookahead fits the servers, 'best' is searched in the discrete-event engine, not set to k_max."""
    s = Scenario.from_ms(30.0, 3.0, 0.8, servers=2, tokens=300, k_max=6)  # k >= 10 would be needed to never wait
    assert not dsi_lookahead_options(s).any_feasible
    choice = best_lookahead(s, "dsi")
    assert choice.method == "des" and "simulating" in choice.note
    assert set(choice.candidates["k"]) == set(range(1, 7))
    lat = dict(zip(choice.candidates["k"], choice.candidates["latency_per_token_ms"]))
    assert lat[choice.k] == min(lat.values())
    res = simulate(s, "dsi", replications=6, rng=0)  # the same pilot: the chosen k is the simulated best
    assert res.lookahead == choice.k and res.latency_per_token_ms.mean == pytest.approx(lat[choice.k])
    with pytest.raises(UnsupportedScenarioError, match="method='des'"):
        best_lookahead(s, "dsi", method="theory")


def test_des_candidate_grid():
    assert des_candidates(5).tolist() == [1, 2, 3, 4, 5]
    grid = des_candidates(200)
    assert grid[:12].tolist() == list(range(1, 13)) and grid[-1] == 200 and np.all(np.diff(grid) > 0)


# --- one planner, one tie-break ------------------------------------------------------------------------------


def test_tie_break_fewest_servers_then_gpu_then_smallest_k():
    k = np.array([1, 2, 3, 4, 5])
    lat = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    servers = np.array([8, 3, 3, 3, 1])
    gpu = np.array([0.1, 0.5, 0.2, 0.2, 0.0])
    assert _pick(k, servers, lat, gpu, "latency") == 2  # fewest servers (3), then fewest GPU-s (0.2), then k=3 < 4
    assert _pick(k, servers, lat, lambda idx: gpu[idx], "latency") == 2  # lazily computed costs: same rule
    assert _pick(k, servers, lat, gpu, "cost") == 4  # cost: GPU-s first
    gpu2 = np.array([0.1, 0.1, 0.3, 0.3, 0.3])
    assert _pick(k, np.array([2, 2, 1, 1, 1]), np.array([3.0, 2.0, 1.0, 1.0, 1.0]), gpu2, "cost") == 1


def test_acceptance_zero_dsi_takes_the_fewest_servers_not_k1_with_eight():
    """Defect 3: at acceptance 0 every lookahead ties; DSI took k=1 with 8+ servers and wasted forwards."""
    s = Scenario.from_ms(30.0, 3.0, 0.0)
    choice = best_lookahead(s, "dsi")
    assert (choice.k, choice.servers) == (10, 2)  # the smallest k that needs only the chain plus one server
    cmp = compare(s, "theory")
    assert cmp.dsi.lookahead == 10 and cmp.dsi.target_servers == 2
    assert cmp.dsi.target_forwards_wasted.mean == 0.0
    assert cmp.dsi.latency_per_token_ms.mean == pytest.approx(30.0)


def test_the_des_and_compare_resolve_best_with_the_same_planner():
    s = Scenario.from_ms(30.0, 3.0, 0.8, servers=4, tokens=300)
    plan = best_lookahead(s, "dsi")
    assert compare(s, "theory").dsi.lookahead == plan.k == simulate(s, "dsi", replications=2, rng=0).lookahead
    assert plan.servers == int(theory.dsi_servers_needed(0.1, plan.k)) <= 4


def test_objective_cost_minimises_gpu_seconds():
    s = Scenario.from_ms(30.0, 3.0, 0.8, k_max=40)
    fast, cheap = best_lookahead(s, "dsi"), best_lookahead(s, "dsi", objective="cost")
    assert fast.k == 1 and cheap.gpu_seconds_per_token < fast.gpu_seconds_per_token
    assert cheap.gpu_seconds_per_token == pytest.approx(min(cheap.candidates["gpu_seconds_per_token"]))


# --- intervals count independent units ----------------------------------------------------------------------


def _traces():
    return TraceAcceptance.from_run_lengths([[5, 0, 12, 3, 0, 7, 1, 9], [2, 8, 0, 0, 15, 4], [1, 1, 6, 0, 2]],
                                            wrap=True)


def test_replayed_traces_are_the_independent_units_not_the_replications():
    """Defect 4: 3 traces gave intervals that shrank with replications (±0.049 at 300, ±0.016 at 3000)."""
    s = Scenario.from_ms(30.0, 3.0, _traces(), lookahead=5, tokens=200)
    small = compare(s, "montecarlo", replications=300, rng=0)
    large = compare(s, "montecarlo", replications=3000, rng=0)
    for res in (small, large):
        assert res.si.independent_units == 3 and res.si.latency_per_token_ms.n == 3
        assert res.speedup["dsi_vs_si"].n == 3
    # the replays are deterministic: the per-trace means, hence the interval, do not depend on the replications
    assert small.si.latency_per_token_ms.high - small.si.latency_per_token_ms.low == pytest.approx(
        large.si.latency_per_token_ms.high - large.si.latency_per_token_ms.low)
    assert "3 independent traces" in str(small)
    des = simulate(s, "si", replications=40, rng=0)
    assert des.independent_units == 3 and des.latency_per_token_ms.n == 3
    assert "over the 3 traces" in str(des)


def test_cli_says_intervals_count_traces(tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text("runs: 5 0 12 3 0 7 1 9\nruns: 2 8 0 0 15 4\nruns: 1 1 6 0 2\n")
    code, out, _ = run_cli(capsys, "compare", "--target-ms", "30", "--drafter-ms", "3", "--acceptance-trace", str(f),
                           "--wrap", "--tokens", "100", "--method", "montecarlo", "--replications", "30")
    assert code == 0 and "30 replications of 3 independent traces" in out


def test_estimate_over_units_averages_within_units_first():
    e = Estimate.from_samples([1.0, 1.0, 1.0, 5.0], units=[0, 0, 0, 1])
    assert e.mean == 3.0 and e.n == 2  # two units weigh equally, whatever their replication counts
    assert e.stderr == pytest.approx(np.std([1.0, 5.0], ddof=1) / math.sqrt(2))
    r = Estimate.ratio([2.0, 2.0, 6.0], [1.0, 1.0, 3.0], units=[0, 0, 1])
    assert r.mean == 2.0 and r.n == 2


# --- one latency rule ----------------------------------------------------------------------------------------


class _SamplesButSaysNothing:
    tpot_ms, ttft_ms, context_dependent = 30.0, 0.0, False

    def forward(self, n_new=1, context_len=0, phase="decode"):
        return 30.0

    def sample(self, rng, n_new=1, context_len=0, phase="decode"):
        return 30.0 * rng.lognormal(0, 1.0)


class _RandomLatency(_SamplesButSaysNothing):
    deterministic = False


def test_a_latency_model_must_say_whether_it_is_deterministic():
    """Defect 5: sample() without `deterministic` was random for SI and constant for DSI and compare."""
    with pytest.raises(InvalidParameterError, match="deterministic"):
        Scenario(_SamplesButSaysNothing(), ConstantLatency(3.0), IIDAcceptance(0.8))
    s = Scenario(_RandomLatency(), ConstantLatency(3.0), IIDAcceptance(0.8), lookahead=5, tokens=100)
    with pytest.raises(UnsupportedScenarioError, match="stochastic"):
        compare(s, "montecarlo", replications=2, rng=0)
    for algorithm in ("nonsi", "si", "dsi"):  # every engine samples it
        spread = np.std(simulate(s, algorithm, replications=4, rng=0).per_run_latency_ms)
        assert spread > 100.0, algorithm


def test_latency_base_gives_a_deterministic_model():
    class Measured(LatencyBase):
        tpot_ms, ttft_ms, context_dependent = 25.0, 0.0, False

        def forward(self, n_new=1, context_len=0, phase="decode"):
            return 25.0 + 2.0 * (np.asarray(n_new) - 1)

    from simspec import StaticLookahead
    from simspec.des import run_once
    from simspec.montecarlo.si import si_run

    s = Scenario(Measured(), ConstantLatency(2.5), IIDAcceptance(0.8), lookahead=4, tokens=200)
    A = s.acceptance.sample(np.random.default_rng(1), s.tokens, 3)
    mc = si_run(A, StaticLookahead(4), s.target, s.drafter)["decode_ms"]
    des = [run_once(s, "si", A[i]).decode_ms for i in range(3)]
    assert des == pytest.approx(mc.tolist(), rel=1e-12)
    assert compare(s, "montecarlo", replications=3, rng=1).si.latency_per_token_ms.n == 3


# --- the paper's "7 servers", read once ----------------------------------------------------------------------


def test_paper_servers_one_reading_everywhere():
    """Defect 6: demo read N <= 7 with the chain, the heatmap 7 without, dsi_table 8 with it."""
    import importlib.util
    from pathlib import Path

    from simspec.demo import dsi_paper_table, format_table
    from simspec.heatmap import repo_heatmap

    assert PAPER_SERVERS == 8
    rows = dsi_paper_table(rng=0, reps=20)
    assert all(r.matched_dsi_servers <= PAPER_SERVERS for r in rows)
    vicuna = rows[0]  # c = 0.066: k=5 needs ceil(1/0.33)+1 = 5 servers and fits in 8; k=1 needs 17 and does not
    assert vicuna.matched_dsi_k == 5 and vicuna.matched_dsi_servers == 5
    assert "unrestricted" in format_table(rows) and "best case" not in format_table(rows)
    hm = repo_heatmap(rng=0, reps=1, tokens=50)
    assert hm.dsi_servers.max() <= PAPER_SERVERS
    path = Path(__file__).resolve().parents[1] / "experiments" / "dsi_table" / "run.py"
    spec = importlib.util.spec_from_file_location("dsi_table_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.N_MAX == PAPER_SERVERS


def test_unrestricted_column_is_both_algorithms_at_their_planner_best():
    from simspec.demo import dsi_paper_table
    from simspec.reference import DSI_PAPER_TABLE

    row = dsi_paper_table(rng=0, reps=10)[4]
    p = DSI_PAPER_TABLE[4]
    s = Scenario.from_ms(p.target_ms, p.drafter_ms, p.acceptance)
    si, dsi = best_lookahead(s, "si"), best_lookahead(s, "dsi")
    assert row.best_dsi_vs_si == pytest.approx(si.latency_per_token_ms / dsi.latency_per_token_ms)
    assert (row.best_si_k, row.best_dsi_k, row.best_dsi_servers) == (si.k, dsi.k, dsi.servers)


# --- the record family ---------------------------------------------------------------------------------------


def test_records_share_names_print_the_cli_table_and_complete_tabs(capsys):
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=200)
    mc = compare(s, "montecarlo", replications=20, rng=3)
    des = simulate(s, "dsi", replications=4, rng=3)
    for name in ("latency_per_token_ms", "gpu_seconds_per_token", "lookahead", "target_servers", "replications",
                 "independent_units", "target_forwards", "drafter_forwards"):
        assert hasattr(mc.dsi, name) and name in dir(des), name
    assert des.replications == 4 and mc.dsi.replications == 20
    assert des.target_servers == mc.dsi.target_servers == 3  # ceil(1/(5*0.1)) + the chain
    assert "__getattr__" not in vars(type(des))
    code, out, _ = run_cli(capsys, "compare", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                           "--lookahead", "5", "--tokens", "200", "--method", "montecarlo", "--replications", "20",
                           "--seed", "3")
    assert out.startswith(str(mc))
    assert "<table>" in mc._repr_html_() and "latency per token (ms)" in des._repr_html_()
    code, out, _ = run_cli(capsys, "simulate", "--algorithm", "dsi", "--target-ms", "30", "--drafter-ms", "3",
                           "--acceptance", "0.8", "--lookahead", "5", "--tokens", "200", "--replications", "4",
                           "--seed", "3")
    assert out.startswith(str(des))


def test_estimate_prints_with_its_unit():
    assert str(Estimate.from_samples([11.2, 11.3, 11.25, 11.29], unit="ms")) == "11.26 ± 0.045 ms"
    assert str(Estimate.exact(8.4, "ms")) == "8.4 ms"
    assert f"{Estimate.exact(8.4, 'ms'):.3f}" == "8.400"


def test_frames_keep_intervals_and_scenario_columns_and_concatenate():
    pd = pytest.importorskip("pandas")
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=200)
    frames = [compare(s, "montecarlo", replications=10, rng=0).to_frame(),
              simulate(s, "dsi", replications=3, rng=0).to_frame(),
              compare(s.replace(acceptance=IIDAcceptance(0.6)), "theory").to_frame()]
    df = pd.concat(frames, ignore_index=True)
    assert len(df) == 7
    for col in ("latency_per_token_ms", "latency_per_token_ms_ci_low", "latency_per_token_ms_ci_high",
                "target_servers", "replications", "scenario_acceptance_mean", "scenario_c", "method"):
        assert col in df.columns, col
    assert sorted(df["scenario_acceptance_mean"].unique()) == [0.6, 0.8]
    assert (df["latency_per_token_ms_ci_low"] <= df["latency_per_token_ms"]).all()


def test_compare_reps_is_the_old_name_of_replications():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, tokens=100)
    with pytest.warns(DeprecationWarning, match="replications"):
        old = compare(s, "montecarlo", reps=5, rng=0)
    assert old.to_dict() == compare(s, "montecarlo", replications=5, rng=0).to_dict()


def test_replications_run_in_chunks_with_identical_results(monkeypatch):
    import sys

    cmp_mod = sys.modules["simspec.compare"]
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=4, tokens=100)
    sizes = []
    draw = IIDAcceptance.draw

    def counting_draw(self, rng, n_positions, reps=1):
        sizes.append(reps)
        return draw(self, rng, n_positions, reps)

    monkeypatch.setattr(IIDAcceptance, "draw", counting_draw)
    whole = compare(s, "montecarlo", replications=50, rng=5)
    assert sizes == [50]
    sizes.clear()
    monkeypatch.setattr(cmp_mod, "CHUNK_BYTES", 100 * 40 * 7)  # seven replications a chunk (40 bytes an outcome)
    chunked = compare(s, "montecarlo", replications=50, rng=5)
    assert sizes == [7] * 7 + [1]  # the draws really were chunked
    assert chunked.si.per_run_latency_ms.tolist() == whole.si.per_run_latency_ms.tolist()
    assert chunked.dsi.per_run_latency_ms.tolist() == whole.dsi.per_run_latency_ms.tolist()


# --- simspec plan --------------------------------------------------------------------------------------------


def test_plan_rows_knee_and_pareto(capsys):
    from simspec.plan import plan

    p = plan(Scenario.from_ms(30.0, 3.0, 0.8), max_servers=12)
    assert [r.servers for r in p.rows] == list(range(1, 13))
    assert p.rows[0].dsi_latency_per_token_ms == 30.0  # one server: the chain's, DSI is non-SI
    assert p.rows[1].dsi_lookahead == 10 and p.rows[2].dsi_lookahead == 5  # ceil(1/(k c)) + 1 <= N
    lat = [r.dsi_latency_per_token_ms for r in p.rows]
    assert all(b <= a + 1e-12 for a, b in zip(lat[1:], lat[2:]))  # more servers never hurt
    assert p.knee == 11 and lat[10] == pytest.approx(8.4)  # k=1 (Prop. 1) needs ceil(1/0.1) + 1 = 11
    assert p.rows[5].dsi_lookahead == 2 and p.rows[5].dsi_servers_used == 6
    assert "SI (1 server)" in p.pareto and "DSI 11 servers (k=1)" in p.pareto
    assert "DSI 12 servers (k=1)" not in p.pareto  # the same configuration, one server idle
    code, out, _ = run_cli(capsys, "plan", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                           "--max-servers", "12", "--json")
    d = json.loads(out)
    assert code == 0 and d["knee"] == 11 and len(d["rows"]) == 12


def test_plan_figure_and_bad_flags(tmp_path, capsys):
    out = tmp_path / "plan.png"
    code, text, _ = run_cli(capsys, "plan", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                            "--max-servers", "4", "--plot", str(out))
    assert code == 0 and out.stat().st_size > 10_000 and "<- knee" in text
    code, _, err = run_cli(capsys, "plan", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                           "--servers", "4")
    assert code == 2 and "--max-servers" in err
    code, _, err = run_cli(capsys, "plan", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8",
                           "--plot", str(tmp_path / "x.xyz"))
    assert code == 2 and "xyz" in err
