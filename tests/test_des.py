"""The discrete-event engine: exact agreement with the Monte Carlo, bounds, cancellation, servers."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simspec import (
    AffineLatency,
    ConstantLatency,
    HeuristicLookahead,
    IIDAcceptance,
    InvalidParameterError,
    MarkovAcceptance,
    OracleLookahead,
    Scenario,
    StaticLookahead,
    StochasticLatency,
)
from simspec.des import EventLog, Overheads, read_jsonl, run_once, simulate, write_jsonl
from simspec.montecarlo.dsi import dsi_run
from simspec.montecarlo.si import si_run

COSTS = ("decode_ms", "target_forwards", "target_forwards_wasted", "drafter_forwards", "target_busy_ms",
         "drafter_busy_ms")


@st.composite
def paper_runs(draw):
    """Unlimited servers, constant (or affine) latencies, zero overheads: the Monte Carlo's assumptions."""
    S = draw(st.integers(1, 60))
    k = draw(st.integers(1, 8))
    generic = draw(st.booleans())
    if generic:
        # Away from exact ties (c = 1/3, 1/2, ... make event times coincide in exact arithmetic, and
        # floating point then orders them either way): an irrational offset keeps every gap >> 1 ulp.
        c = draw(st.integers(10, 1800)) / 1000 + 2**0.5 * 1e-7
    else:
        c = draw(st.floats(0.01, 1.8))
    a = draw(st.floats(0.0, 1.0))
    slope = draw(st.sampled_from([0.0, 0.05, 0.3]))
    t = draw(st.sampled_from([1.0, 7.5, 30.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    chain = draw(st.booleans())
    A = np.random.default_rng(seed).random((2, S)) < a
    s = Scenario(AffineLatency(t, slope * t), ConstantLatency(c * t), IIDAcceptance(a), lookahead=k, tokens=S)
    return s, A, k, chain, generic


@given(paper_runs())
def test_des_equals_montecarlo_run_by_run(case):
    """Same A: identical DSI latency (always) and costs (away from exact ties) per run, identical SI latency.

    At an exact tie (a drafter block ending at the very instant the epoch ends, say) the two engines may
    count one started forward differently; the latency never differs.
    """
    s, A, k, chain, generic = case
    mc = dsi_run(A, k, s.target, s.drafter, chain=chain)
    mc_si = si_run(A, StaticLookahead(k), s.target, s.drafter)
    for i in range(A.shape[0]):
        des = run_once(s, "dsi", A[i], chain=chain)
        for name in COSTS if generic else ("decode_ms",):
            assert getattr(des, name) == pytest.approx(mc[name][i], rel=1e-9, abs=1e-9), name
        si = run_once(s, "si", A[i])
        assert si.decode_ms == pytest.approx(mc_si["decode_ms"][i], rel=1e-9)
        assert si.target_forwards == mc_si["target_forwards"][i]
        assert si.drafter_forwards == mc_si["drafter_forwards"][i]
        nonsi = run_once(s, "nonsi", A[i])
        assert nonsi.decode_ms == pytest.approx(s.tokens * s.target.tpot_ms)
        if chain:  # Theorem 1: never slower than non-SI, run by run
            assert des.decode_ms <= nonsi.decode_ms * (1 + 1e-12)


def test_dsi_not_slower_than_si_in_expectation_and_paired_by_seed():
    s = Scenario.from_ms(30.0, 6.0, 0.75, lookahead=4, tokens=300)
    dsi = simulate(s, "dsi", replications=30, rng=11)
    si = simulate(s, "si", replications=30, rng=11)
    non = simulate(s, "nonsi", replications=30, rng=11)
    d = np.array([r.latency_ms for r in dsi.runs])
    q = np.array([r.latency_ms for r in si.runs])
    assert d.mean() < q.mean() and np.all(d <= np.array([r.latency_ms for r in non.runs]) + 1e-9)
    # pairing: replication i of each algorithm saw the same outcomes, so the rejections line up with SI's
    assert dsi.runs[0].rejections > 0


@pytest.mark.parametrize("c, t", [(0.01, 0.01), (0.3, 1.0), (0.99, 10.0), (0.5, 0.2)])
@pytest.mark.parametrize("a", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("k", [1, 7, 1000])
def test_reference_repo_bounds(c, t, a, k):
    """The DSI authors' test suite, translated: per run (floor(S/(k+1)) - 1) c t + t <= DSI <= S t <= S (k c t + t)."""
    S = 50
    s = Scenario.from_ms(t, c * t, a, lookahead=k, tokens=S)
    A = np.random.default_rng(int(1000 * c + 10 * a + k)).random((3, S)) < a
    for row in A:
        lat = run_once(s, "dsi", row).decode_ms
        assert (S // (k + 1) - 1) * c * t + t <= lat + 1e-9
        assert lat <= S * t + 1e-9 <= S * (k * c * t + t) + 1e-9


def test_too_few_servers_slow_dsi_down_instead_of_refusing():
    s_inf = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=1, tokens=400)
    lat = {}
    for n in (None, 11, 4, 2, 1):
        res = simulate(s_inf.replace(servers=n), "dsi", replications=10, rng=5)
        assert n is None or res.peak_servers_busy.high <= n
        lat[n] = np.array([r.latency_ms for r in res.runs])
    assert np.allclose(lat[None], lat[11])  # ceil(1/(kc)) + chain = 11 servers suffice: no queueing
    assert np.all(lat[4] >= lat[11] - 1e-9) and lat[4].mean() > lat[11].mean()
    assert np.all(lat[1] == pytest.approx(400 * 30.0))  # only the chain: DSI is non-SI
    q = simulate(s_inf.replace(servers=4), "dsi", replications=3, rng=5)
    assert q.queueing_delay_ms.mean > 0


@pytest.mark.parametrize("queue", ["fifo", "lifo"])
@pytest.mark.parametrize("servers", [None, 3])
def test_cancellation_invariants_from_the_event_log(queue, servers):
    s = Scenario(StochasticLatency(ConstantLatency(20.0), 0.2), ConstantLatency(2.5), MarkovAcceptance.from_mean(0.7, 0.8),
                 lookahead=3, servers=servers, tokens=250)
    res = simulate(s, "dsi", replications=1, rng=3, queue=queue, trace=True)
    ev = res.events
    # every position is confirmed exactly once, in order
    conf = [e["positions"] for e in ev if e["event"] == "confirm"]
    covered = [p for lo, hi in conf for p in range(lo, hi + 1)]
    assert covered == list(range(250))
    # no cancelled task ever ends (so none contributes a token); servers busy never exceed N
    cancelled = {e["task"] for e in ev if e["event"] == "verify_cancel"}
    ended = {e["task"] for e in ev if e["event"] == "verify_end"}
    assert not cancelled & ended
    busy = peak = 0
    for e in ev:
        if e["event"] in ("verify_start", "chain_start"):
            busy += 1
        elif e["event"] in ("verify_end", "verify_cancel", "chain_end", "chain_cancel"):
            busy -= 1
        peak = max(peak, busy)
        assert busy >= 0
    assert peak == res.runs[0].peak_servers_busy
    if servers is not None:
        assert peak <= servers


def test_fifo_and_lifo_differ_when_tasks_queue():
    s = Scenario.from_ms(30.0, 2.0, 0.85, lookahead=2, servers=3, tokens=300)
    f = simulate(s, "dsi", replications=8, rng=2, queue="fifo").latency_ms.mean
    l = simulate(s, "dsi", replications=8, rng=2, queue="lifo").latency_ms.mean
    assert f != l


def test_overheads_cost_time():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=5, servers=8, tokens=300)
    base = simulate(s, "dsi", replications=10, rng=4).latency_ms.mean
    for ov in (Overheads(message_ms=1.0), Overheads(sync_ms=2.0), Overheads(startup_ms=1.0)):
        assert simulate(s, "dsi", replications=10, rng=4, overheads=ov).latency_ms.mean > base
    si0 = simulate(s, "si", replications=10, rng=4).latency_ms.mean
    si1 = simulate(s, "si", replications=10, rng=4, overheads=Overheads(message_ms=1.0)).latency_ms.mean
    assert si1 > si0
    with pytest.raises(InvalidParameterError, match="overheads are in ms"):
        Overheads(message_ms=-1)


def test_results_do_not_depend_on_the_executor():
    s = Scenario(StochasticLatency(ConstantLatency(30.0), 0.3), ConstantLatency(3.0), IIDAcceptance(0.8),
                 lookahead=4, servers=6, tokens=200)
    serial = simulate(s, "dsi", replications=6, rng=9)
    with ThreadPoolExecutor(3) as ex:
        threaded = simulate(s, "dsi", replications=6, rng=9, executor=ex)
    assert serial.runs == threaded.runs
    other = simulate(s, "dsi", replications=6, rng=10)
    assert other.runs != serial.runs


def test_dynamic_policies_and_context_dependent_latency_run():
    s = Scenario(AffineLatency(20.0, 0.5, per_context_token_ms=0.01), ConstantLatency(2.0), IIDAcceptance(0.8),
                 lookahead=HeuristicLookahead(), tokens=200, prompt_len=100)
    res = simulate(s, "si", replications=3, rng=1)
    assert res.runs[0].lookahead == "heuristic k0=5"
    oracle = simulate(s.replace(lookahead=OracleLookahead()), "si", replications=3, rng=1)
    static = simulate(s.replace(lookahead=5), "si", replications=3, rng=1)
    assert oracle.latency_ms.mean < static.latency_ms.mean


def test_trace_roundtrip_and_bad_lines(tmp_path):
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, servers=5, tokens=40)
    res = simulate(s, "dsi", replications=1, rng=0, trace=True)
    path = tmp_path / "ev.jsonl"
    write_jsonl(path, res.events)
    assert read_jsonl(path) == res.events
    path.write_text('{"t": 0, "event": "x", "lane": "y"}\nnot json\n')
    from simspec import TraceFormatError

    with pytest.raises(TraceFormatError, match=":2:"):
        read_jsonl(path)


def test_result_records_and_bad_arguments():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=50)
    res = simulate(s, "dsi", replications=3, rng=0)
    d = res.to_dict()
    for key in ("latency_ms", "latency_per_token_ms", "ttft_ms", "target_forwards", "target_forwards_wasted",
                "gpu_seconds", "peak_servers_busy", "tokens", "latency_ms_ci"):
        assert key in d
    with pytest.raises(InvalidParameterError, match="algorithm"):
        simulate(s, "medusa")
    with pytest.raises(InvalidParameterError, match="queue"):
        simulate(s, "dsi", queue="random")
    with pytest.raises(InvalidParameterError, match="shape"):
        run_once(s, "dsi", np.ones(3, dtype=bool))


def test_a_seed_sequence_is_not_consumed_but_a_generator_advances():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=60)
    ss = np.random.SeedSequence(5)
    a = simulate(s, "dsi", replications=3, rng=ss).per_run_latency_ms
    b = simulate(s, "si", replications=3, rng=ss)
    assert np.array_equal(a, simulate(s, "dsi", replications=3, rng=5).per_run_latency_ms)
    assert np.array_equal(a, simulate(s, "dsi", replications=3, rng=ss).per_run_latency_ms)
    assert b.runs[0].rejections == simulate(s, "si", replications=3, rng=5).runs[0].rejections
    g = np.random.default_rng(5)
    first, second = simulate(s, "dsi", replications=3, rng=g), simulate(s, "dsi", replications=3, rng=g)
    assert not np.array_equal(first.per_run_latency_ms, second.per_run_latency_ms)


def test_no_phantom_rejection_when_every_draft_is_accepted():
    s = Scenario.from_ms(30.0, 3.0, 1.0, lookahead=4, tokens=10)
    log = EventLog()
    rec = run_once(s, "dsi", np.ones(10, dtype=bool), log=log)
    assert rec.rejections == 0 and not any(e["event"] == "reject" for e in log.events)
    assert run_once(s, "si", np.ones(10, dtype=bool)).rejections == 0


def test_simulate_streams_the_trace_to_a_file_event_for_event(tmp_path):
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=4, servers=3, tokens=150)
    kept = simulate(s, "dsi", replications=2, rng=5, trace=True)
    path = tmp_path / "events.jsonl"
    streamed = simulate(s, "dsi", replications=2, rng=5, trace_path=str(path))
    assert streamed.events == [] and streamed.runs == kept.runs  # nothing kept in memory, the same runs
    assert read_jsonl(path) == kept.events and len(kept.events) > 100
    assert not list(tmp_path.glob("*.tmp*"))  # the temporary file was renamed into place
