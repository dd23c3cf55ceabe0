"""The serving engine: batch-1 equality with the single-request engines, conservation, KV, scheduling rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simspec import (AffineLatency, ConstantLatency, HeuristicLookahead, IIDAcceptance, InvalidParameterError,
                     Overheads, Scenario)
from simspec.batch_latency import BatchedLatency
from simspec.des.runner import run_once
from simspec.serving import (SLO, Batching, BatchSizeLookahead, BurstyArrivals, PoissonArrivals, RequestTable,
                             UniformLengths, Workload, load_request_trace, serve)
from simspec.serving.engine import run_engine
from simspec.serving.workload import constant_table

TARGET = AffineLatency(tpot_ms=30.0, per_extra_token_ms=0.5, ttft_ms=80.0)
DRAFTER = ConstantLatency(tpot_ms=3.0, ttft_ms=9.0)


class ContextLatency(AffineLatency):
    """Affine in width and in context: pins that every forward reads the right context."""

    @property
    def context_dependent(self) -> bool:
        return True

    def forward(self, n_new=1, context_len=0, phase="decode"):
        base = super().forward(n_new, context_len, phase)
        return base + 0.01 * context_len if phase == "decode" else base + 0.1 * np.asarray(n_new)


def _outcomes(rng, table, rate=0.7):
    return [rng.random(S) < rate for S in table.output_len.tolist()]


@pytest.mark.parametrize("algorithm", ["nonsi", "si"])
@pytest.mark.parametrize("lookahead", [3, HeuristicLookahead(k0=2, k_max=8)])
def test_one_request_at_a_time_equals_single_request_engine(algorithm, lookahead):
    """Rate -> 0 and batch 1: every request's end-to-end latency is run_once's, run by run, with every overhead."""
    ov = Overheads(message_ms=0.7, sync_ms=1.1, startup_ms=0.3, per_round_ms=0.2, per_draft_token_ms=0.05,
                   per_drafter_forward_ms=0.04, per_emitted_token_ms=0.01)
    target, drafter = ContextLatency(30.0, 0.5, ttft_ms=80.0), ContextLatency(3.0, 0.1, ttft_ms=9.0)
    table = RequestTable(np.arange(6) * 1e7, [5, 40, 12, 7, 90, 33], [17, 64, 1, 2, 40, 25])
    outcomes = _outcomes(np.random.default_rng(3), table)
    eng = run_engine(table, outcomes, None, BatchedLatency(target), BatchedLatency(drafter), algorithm, lookahead
                     if not isinstance(lookahead, int) else __import__("simspec").StaticLookahead(lookahead),
                     Batching(max_batch=1), ov, np.random.default_rng(0))
    for r, acc in zip(eng.requests, outcomes):
        s = Scenario(target, drafter, IIDAcceptance(0.7), lookahead=lookahead, tokens=int(acc.size),
                     prompt_len=r.prompt, overheads=ov)
        rec = run_once(s, algorithm, acc)
        assert r.finish - r.arrival == pytest.approx(rec.latency_ms, rel=1e-12, abs=1e-6)  # clock at 1e7 ms: 1e-9 resolution
        assert r.first_token - r.arrival == pytest.approx(rec.ttft_ms, rel=1e-12, abs=1e-6)
        if algorithm == "si":
            assert r.drafts == rec.drafter_forwards


def test_conservation_and_kv_budget_under_pressure():
    """Every request finishes once with exactly its tokens; the KV cache is never over its budget; preemption happens."""
    w = Workload(PoissonArrivals(rate=40.0), prompt_len=UniformLengths(20, 200), output_len=UniformLengths(10, 120),
                 requests=300)
    table = w.generate(np.random.default_rng(5))
    outcomes = _outcomes(np.random.default_rng(6), table)
    cfg = Batching(max_batch=16, kv_blocks=60, block_size=16, max_tokens_per_step=1024)
    from simspec import StaticLookahead
    eng = run_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER), "si",
                     StaticLookahead(5), cfg, Overheads(), np.random.default_rng(0))
    pos = np.array([r.pos for r in eng.requests])
    np.testing.assert_array_equal(pos, table.output_len)
    assert eng.finished == len(table)
    tokens = sum(r.rounds + r.accepted for r in eng.requests)
    assert tokens == table.output_tokens
    assert all(r.finish >= r.first_token >= r.arrival for r in eng.requests)
    rep = eng.replicas[0]
    assert rep.peak_blocks <= 60
    assert rep.free_blocks == 60  # every block back at the end
    assert eng.preemptions > 0  # the budget is tight enough that the test exercises preemption


def test_preemption_takes_the_newest_sequence():
    """Two requests admitted together; the cache cannot grow both: the later-admitted one is preempted."""
    table = RequestTable([0.0, 0.0], [16, 16], [40, 40])
    outcomes = [np.ones(40, bool), np.ones(40, bool)]
    cfg = Batching(max_batch=2, kv_blocks=4, block_size=16)  # 64 tokens: each request alone needs 56
    eng = run_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER), "nonsi",
                     None, cfg, Overheads(), np.random.default_rng(0))
    first, second = eng.requests
    assert first.preemptions == 0 and second.preemptions >= 1
    assert second.finish > first.finish


def test_fifo_admission_with_one_slot():
    """max_batch 1: requests are served in arrival order, each after the previous one finishes."""
    table = RequestTable([0.0, 1.0, 2.0], [10, 10, 10], [5, 5, 5])
    eng = run_engine(table, None, None, BatchedLatency(TARGET), None, "nonsi", None, Batching(max_batch=1),
                     Overheads(), np.random.default_rng(0))
    r0, r1, r2 = eng.requests
    # each: prefill 80 ms, then 5 decode forwards of 30 ms + context-free affine width 1
    assert r0.finish == pytest.approx(80 + 5 * 30)
    assert r1.first_token == pytest.approx(r0.finish + 80)
    assert r2.first_token == pytest.approx(r1.finish + 80)


def test_batched_step_time_is_token_count_rule():
    """Two sequences decoding with SI k=2: drafter 2 batched forwards, target one forward of 6 tokens."""
    from simspec import StaticLookahead
    table = RequestTable([0.0, 0.0], [10, 20], [50, 50])
    outcomes = [np.zeros(50, bool), np.zeros(50, bool)]  # every draft rejected: one token per round
    eng = run_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER), "si",
                     StaticLookahead(2), Batching(max_batch=2), Overheads(), np.random.default_rng(0))
    r0, r1 = eng.requests
    prefill = max(80.0, 9.0)  # both prompts in one prefill step, drafter on its own device
    step = 2 * 3.0 + (30.0 + 0.5 * (6 - 1))  # 2 drafter forwards, then verify 3 + 3 tokens
    assert r0.first_token == r1.first_token == pytest.approx(prefill)
    # 50 rounds of one token each; the cut at the end: at position 48 one draft each (1 drafter forward,
    # verify 2 + 2 tokens), at 49 none (verify 1 + 1 tokens)
    cut = (3.0 + 30.0 + 0.5 * (4 - 1)) + (30.0 + 0.5 * (2 - 1))
    assert r0.finish == r1.finish == pytest.approx(prefill + 48 * step + cut)


def test_chunked_prefill_splits_a_long_prompt():
    """Prompt of 200 tokens, 64 per step: four prefill chunks, the TTFT is four prefill forwards."""
    table = RequestTable([0.0], [200], [3])
    eng = run_engine(table, None, None, BatchedLatency(ConstantLatency(30.0, ttft_ms=50.0)), None, "nonsi", None,
                     Batching(max_tokens_per_step=64, chunked_prefill=True), Overheads(), np.random.default_rng(0))
    (r,) = eng.requests
    assert r.first_token == pytest.approx(4 * 50.0)
    assert r.finish == pytest.approx(4 * 50.0 + 3 * 30.0)


def test_batching_does_not_change_the_tokens_each_request_gets():
    """Static k: per request the rounds, drafts and accepted counts are the same at batch 1 and batch 32."""
    from simspec import StaticLookahead
    w = Workload(PoissonArrivals(rate=50.0), prompt_len=32, output_len=UniformLengths(5, 80), requests=100)
    table = w.generate(np.random.default_rng(1))
    outcomes = _outcomes(np.random.default_rng(2), table)
    runs = [run_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER), "si",
                       StaticLookahead(4), Batching(max_batch=b), Overheads(), np.random.default_rng(0))
            for b in (1, 32)]
    a, b = ([(r.rounds, r.drafts, r.accepted) for r in e.requests] for e in runs)
    assert a == b
    assert runs[1].requests[-1].finish < runs[0].requests[-1].finish  # batching does serve faster


def test_batch_size_lookahead_rule():
    la = BatchSizeLookahead({1: 6, 4: 3, 16: 1})
    assert [la.k_for(b) for b in (1, 3, 4, 15, 16, 100)] == [6, 6, 3, 3, 1, 1]
    with pytest.raises(InvalidParameterError, match="batch 1"):
        BatchSizeLookahead({2: 3})


def test_serve_pairs_algorithms_and_is_reproducible():
    w = Workload(BurstyArrivals(rate=5.0, cv=2.0), prompt_len=64, output_len=32, requests=40)
    kw = dict(lookahead={1: 5, 8: 2}, batching=Batching(max_batch=8), replications=3, rng=7,
              slo=SLO(ttft_ms=500.0, tpot_ms=20.0))
    a = serve(w, TARGET, DRAFTER, IIDAcceptance(0.8), **kw)
    b = serve(w, TARGET, DRAFTER, IIDAcceptance(0.8), **kw)
    assert a.to_dict() == b.to_dict()
    rows = list(a.records())
    assert len(rows) == 2 * 3 * 40
    by = {(r["algorithm"], r["replication"], r["request"]): r for r in rows}
    # common random numbers: both algorithms serve the same arrivals and lengths
    assert all(by[("si", i, j)]["arrival_ms"] == by[("nonsi", i, j)]["arrival_ms"] for i in range(3) for j in range(40))
    assert a.metrics["si"]["ttft_p50_ms"].n == 3
    e2e = [np.mean([by[(alg, i, j)]["e2e_ms"] for j in range(40)]) for alg in ("nonsi", "si") for i in range(3)]
    assert a.speedup["si_vs_nonsi"].mean == pytest.approx(np.mean(e2e[:3]) / np.mean(e2e[3:]))
    text = str(a)
    assert "TTFT p99 (ms)" in text and "goodput" in text and "SI vs non-SI: mean end-to-end latency" in text


def test_light_load_speedup_matches_the_single_request_closed_form():
    """At a request rate -> 0 the SI speedup in TPOT is the batch-1 one: (k·d + T)/E[tokens per round] vs T."""
    from simspec import theory
    w = Workload(PoissonArrivals(rate=0.01), prompt_len=16, output_len=400, requests=20)
    target = ConstantLatency(30.0, ttft_ms=10.0)
    res = serve(w, target, ConstantLatency(3.0, ttft_ms=1.0), IIDAcceptance(0.8), lookahead=4, replications=2, rng=0)
    per_token = theory.si_latency_per_token(0.8, 0.1, 4) * 30.0
    assert res.metrics["si"]["tpot_p50_ms"].mean == pytest.approx(per_token, rel=0.05)
    assert res.metrics["si"]["mean_batch"].mean == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("make, match", [
    (lambda: PoissonArrivals(rate=-1.0), "rate"),
    (lambda: Workload(PoissonArrivals(1.0), prompt_len=0), "prompt_len"),
    (lambda: Batching(kv_blocks=0), "kv_blocks"),
    (lambda: Batching(drafter="gpu"), "separate"),
    (lambda: SLO(ttft_ms=0), "SLO"),
    (lambda: serve(Workload(PoissonArrivals(1.0), prompt_len=100, output_len=100, requests=2), TARGET, DRAFTER,
                   IIDAcceptance(0.8), batching=Batching(kv_blocks=5, block_size=16)), "KV cache holds 5 blocks"),
    (lambda: serve(Workload(PoissonArrivals(1.0), prompt_len=100, requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   batching=Batching(max_tokens_per_step=64)), "chunked_prefill"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   algorithms=("medusa",)), "algorithms"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   algorithms=("tree",)), r"needs tree=TokenTree"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   tree=__import__("simspec").TokenTree.chain(3)), "add 'tree' to algorithms"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   algorithms=("tree",), tree=__import__("simspec").TokenTree.k_ary([8, 8]),
                   batching=Batching(max_tokens_per_step=64, chunked_prefill=True)), "max_tokens_per_step"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, None), "acceptance"),
    (lambda: serve(Workload(PoissonArrivals(1.0), requests=2), TARGET, DRAFTER, IIDAcceptance(0.8),
                   rng=np.random.default_rng(0)), "SeedSequence"),
])
def test_bad_input_is_named(make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make()


def test_request_trace_file(tmp_path):
    p = tmp_path / "reqs.jsonl"
    p.write_text('{"arrival_s": 1.5, "prompt_len": 10, "output_len": 4}\n'
                 '{"arrival_s": 0.5, "prompt_len": 20, "output_len": 8}\n')
    tr = load_request_trace(p)
    np.testing.assert_allclose(tr.table.arrival_ms, [0.0, 1000.0])
    assert tr.table.prompt_len.tolist() == [20, 10]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"arrival_s": 0, "prompt_len": 10}\n')
    from simspec.errors import TraceFormatError
    with pytest.raises(TraceFormatError, match=r"bad.jsonl:1: missing key 'output_len'"):
        load_request_trace(bad)
    res = serve(tr, TARGET, algorithms=("nonsi",))
    assert res.scenario["trace"] and "replayed from a trace" in str(res)


def test_constant_table_helper():
    t = constant_table(3, 10.0, 5, 6)
    assert t.arrival_ms.tolist() == [0.0, 10.0, 20.0] and math.isclose(t.output_tokens, 18)


def test_cli_serve_json_and_errors(capsys, tmp_path):
    import json

    from simspec.cli import main
    rec = tmp_path / "rec.csv"
    assert main(["serve", "--hardware", "H100", "--target-params", "8e9", "--drafter-params", "1e9",
                 "--acceptance", "0.75", "--lookahead", "1:4,16:2", "--rate", "2", "--requests", "40",
                 "--replications", "2", "--records", str(rec), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["speedup"]) == {"si_vs_nonsi", "si_vs_nonsi_tpot", "si_vs_nonsi_throughput"}
    assert out["metrics"]["si"]["tpot_p50_ms"]["n"] == 2
    assert len(rec.read_text().splitlines()) == 1 + 2 * 2 * 40
    for argv, msg in ((["--target-params", "8e9"], "add --hardware"),
                      (["--hardware", "H100", "--target-ms", "30"], "--target-params"),
                      (["--target-ms", "30", "--drafter-ms", "3"], "--acceptance"),
                      (["--target-ms", "30", "--lookahead", "x"], "--lookahead"),
                      (["--target-ms", "30", "--records", str(tmp_path / "r.txt")], ".csv")):
        assert main(["serve", "--rate", "1", "--requests", "5", *argv]) == 2
        assert msg in capsys.readouterr().err


@pytest.mark.parametrize("k", [1, 3])
def test_dsi_one_request_at_a_time_equals_single_request_engine(k):
    """One server, batch 1, one request at a time: DSI under load is run_once's DSI without the chain."""
    from simspec import StaticLookahead
    from simspec.serving.dsi import run_dsi_engine
    ov = Overheads(message_ms=0.7, startup_ms=0.3, per_round_ms=0.2, per_draft_token_ms=0.05,
                   per_emitted_token_ms=0.01)
    target, drafter = ConstantLatency(30.0, ttft_ms=80.0), ConstantLatency(4.0, ttft_ms=9.0)
    table = RequestTable(np.arange(5) * 1e7, [5, 40, 12, 7, 90], [17, 64, 1, 2, 40])
    outcomes = _outcomes(np.random.default_rng(4), table)
    eng = run_dsi_engine(table, outcomes, None, BatchedLatency(target), BatchedLatency(drafter),
                         StaticLookahead(k), Batching(max_batch=1, replicas=1), ov, np.random.default_rng(0))
    for r, acc in zip(eng.requests, outcomes):
        s = Scenario(target, drafter, IIDAcceptance(0.7), lookahead=k, tokens=int(acc.size), prompt_len=r.prompt,
                     overheads=ov, servers=1, chain=False)
        rec = run_once(s, "dsi", acc)
        assert r.finish - r.arrival == pytest.approx(rec.latency_ms, rel=1e-12, abs=1e-6)
        assert r.first_token - r.arrival == pytest.approx(rec.ttft_ms, abs=1e-6)
        assert r.drafts == rec.drafter_forwards


def test_dsi_shares_servers_and_batches_tasks():
    """DSI on 2 servers: every request finishes with its tokens; steps batch several requests' tasks."""
    w = Workload(PoissonArrivals(rate=20.0), prompt_len=64, output_len=UniformLengths(20, 60), requests=60)
    res = serve(w, TARGET, DRAFTER, IIDAcceptance(0.7), lookahead=3, algorithms=("nonsi", "si", "dsi"),
                batching=Batching(max_batch=8, replicas=2), replications=2, rng=3)
    assert set(res.speedup) >= {"dsi_vs_nonsi", "dsi_vs_si", "si_vs_nonsi"}
    assert res.metrics["dsi"]["mean_batch"].mean > 1.5
    assert res.metrics["dsi"]["gpus"].mean == 4 and res.metrics["nonsi"]["gpus"].mean == 2
    rows = [r for r in res.records() if r["algorithm"] == "dsi"]
    assert len(rows) == 120 and all(r["e2e_ms"] >= r["ttft_ms"] > 0 for r in rows)
    assert "DSI vs SI" in str(res)


def _admitted(r) -> float:
    return r.arrival + r.wait_ms


def test_dsi_kv_cache_is_one_servers_cache_reserved_at_admission():
    """kv_blocks = 10 of 16 tokens, k = 3: a request reserves blocks_for(prompt + output + 4). A (52 + 40 + 4 =
    96 tokens: 6 blocks) runs; B (6 blocks) waits for A's blocks; C (1 + 10 + 4 tokens: 1 block) would fit beside
    A but is admitted in arrival order, after B. However many servers, at most what one cache holds runs."""
    from simspec import StaticLookahead
    from simspec.serving.dsi import run_dsi_engine

    table = RequestTable([0.0, 1.0, 2.0], [52, 52, 1], [40, 40, 10])
    outcomes = _outcomes(np.random.default_rng(2), table)
    for replicas in (1, 3):
        eng = run_dsi_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER),
                             StaticLookahead(3), Batching(max_batch=8, replicas=replicas, kv_blocks=10, block_size=16),
                             Overheads(), np.random.default_rng(0))
        a, b, c = eng.requests
        assert _admitted(a) == 0.0
        assert _admitted(b) == pytest.approx(a.finish)  # A's blocks back, B in
        assert _admitted(c) == pytest.approx(_admitted(b))  # behind B, though it fit beside A
        assert eng.peak_blocks == 7 and eng.free_blocks == 10  # B (6) and C (1) together; all back at the end
    unlimited = run_dsi_engine(table, outcomes, None, BatchedLatency(TARGET), BatchedLatency(DRAFTER),
                               StaticLookahead(3), Batching(max_batch=8, replicas=3), Overheads(),
                               np.random.default_rng(0))
    assert all(r.wait_ms == 0.0 for r in unlimited.requests)


def test_dsi_kv_cache_bad_input_is_named():
    from simspec.errors import UnsupportedScenarioError

    w = Workload(PoissonArrivals(rate=20.0), prompt_len=64, output_len=61, requests=4)
    with pytest.raises(InvalidParameterError, match="under DSI a request reserves its prompt, output and 4 slots"):
        serve(w, TARGET, DRAFTER, IIDAcceptance(0.7), lookahead=3, algorithms=("dsi",),
              batching=Batching(kv_blocks=8, block_size=16))  # 125 tokens fit in 8 blocks, 125 + 4 do not

    from types import SimpleNamespace

    from simspec.serving.dsi import kv_slots

    with pytest.raises(UnsupportedScenarioError, match="mystery states no maximum lookahead"):
        kv_slots(SimpleNamespace(name="mystery"))  # what serve asks of DSI's lookahead when kv_blocks is set
    assert kv_slots(HeuristicLookahead(k0=2, k_max=8)) == 8
    res = serve(w, TARGET, DRAFTER, IIDAcceptance(0.7), lookahead=HeuristicLookahead(k0=2, k_max=8),
                algorithms=("dsi",), batching=Batching(kv_blocks=100), rng=1)  # k_max = 8 reserves 9 slots
    assert res.metrics["dsi"]["e2e_mean_ms"].mean > 0


def test_crossover_interpolates_in_log_rate():
    from simspec.serving.curves import _crossing
    assert _crossing([1.0, 10.0], [2.0, 0.5]) == pytest.approx(10 ** (1.0 / 1.5))  # y hits 1 at 2/3 of log span
    assert _crossing([1.0, 10.0], [0.9, 0.5]) == 1.0
    assert math.isnan(_crossing([1.0, 10.0], [1.2, 1.1]))


def test_load_curve_and_best_k_pin_their_rules(tmp_path, capsys):
    from simspec import best_k_by_batch, load_curve
    from simspec.cli import main
    curve = load_curve([0.5, 40.0], TARGET, DRAFTER, IIDAcceptance(0.8), prompt_len=32, output_len=32,
                       requests=40, lookahead=3, replications=2, rng=0)
    assert curve.results[0].speedup["si_vs_nonsi"].mean == curve.speedup("si")[0]
    assert len(curve.to_records()) == 4 and {r["rate"] for r in curve.to_records()} == {0.5, 40.0}
    fig = curve.figure()
    assert fig.axes[0].get_xscale() == "log" and "request rate" in fig.axes[0].get_xlabel()
    table = best_k_by_batch([2], [1, 2, 3], TARGET, DRAFTER, IIDAcceptance(0.8), prompt_len=16, output_len=24,
                            replications=1, rng=0)
    best = max((1, 2, 3), key=lambda k: (table.si[(2, k)].mean, -k))
    assert table.best_k() == {2: best}
    with pytest.raises(InvalidParameterError, match="increasing"):
        load_curve([5.0, 1.0], TARGET, DRAFTER, IIDAcceptance(0.8))
    out = tmp_path / "curve.png"
    assert main(["serve", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8", "--rate", "1,30",
                 "--requests", "20", "--replications", "2", "--output-len", "16", "--plot", str(out)]) == 0
    assert out.stat().st_size > 0 and "SI mean latency" in capsys.readouterr().out
    assert main(["serve", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8", "--best-k",
                 "--max-batch", "1,4", "--lookahead", "1-3", "--output-len", "16", "--replications", "1",
                 "--json"]) == 0
    import json
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert len(rows) == 2 * 3 and {r["batch"] for r in rows} == {1, 4}
    assert main(["serve", "--target-ms", "30", "--rate", "1", "--plot", str(out)]) == 2
    assert "several --rate" in capsys.readouterr().err
