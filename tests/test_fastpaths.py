"""Fast paths equal the paths they replace, exactly: SI rounds without a loop, engines in blocks, streamed traces.

Speed is never asserted here (see benchmarks/); what is pinned is that every shortcut gives the same
numbers as the straightforward computation, on hypothesis-generated outcomes and lookaheads,
including ``k > S`` and acceptance rates 0 and 1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simspec.montecarlo.dsi as mc_dsi
import simspec.montecarlo.si as mc_si
import simspec.rounds as rounds_mod
from simspec import (
    AffineLatency,
    ConstantLatency,
    HeuristicLookahead,
    MarkovAcceptance,
    OracleLookahead,
    Scenario,
    StaticLookahead,
    StochasticLatency,
)
from simspec.des import EventLog, Overheads, read_jsonl, run_once, write_jsonl
from simspec.montecarlo.chunks import rep_chunks
from simspec.montecarlo.positions import epoch_lengths, next_rejection
from simspec.montecarlo.si import LaneLookahead, _loop_rounds, si_rounds, si_run
from simspec.montecarlo.sweep import si_sweep
from simspec.rounds import si_round, si_round_lanes, static_rounds


@st.composite
def outcomes(draw, max_s=70, max_rows=4):
    """Outcomes with a = 0, 1 or anything in between (runs of all-accepted and all-rejected rows included)."""
    S = draw(st.integers(1, max_s))
    rows = draw(st.integers(1, max_rows))
    a = draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0)))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((rows, S)) < a


class _Hidden:
    """A policy that proposes the same as ``policy`` but does not say it is static: forces the round loop."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.name = "hidden"
        self.static_k = None

    def start(self, lanes: int):
        return self.policy.start(lanes)


def _equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype.kind == b[name].dtype.kind, name
        assert np.array_equal(a[name], b[name]), name


# -- one SI round --------------------------------------------------------------------------------


@given(outcomes(max_rows=1), st.integers(-2, 90), st.data())
def test_scalar_round_is_the_lane_round(A, k, data):
    S = A.shape[1]
    nxt = next_rejection(A)[0]
    pos = data.draw(st.integers(0, S - 1))
    k_cut, n = si_round(pos, k, nxt.tolist(), S)
    k_lane, n_lane = si_round_lanes(np.array([pos]), np.array([k]), nxt[[pos]], S)
    assert (k_cut, n) == (int(k_lane[0]), int(n_lane[0]))
    assert 0 <= n <= k_cut <= max(min(k, S - pos - 1), 0) and pos + n + 1 <= S


@given(outcomes(), st.data())
def test_static_rounds_equal_the_round_loop(A, data):
    """Per-lane k (1, .., beyond S), lanes sharing rows, any order: the same counts and widths as the loop.

    (A proposal k = 0 is a policy bug that the loop refuses: ``checked_proposal``.)
    """
    rows_n, S = A.shape
    lanes = data.draw(st.integers(1, 8))
    rows = np.array(data.draw(st.lists(st.integers(0, rows_n - 1), min_size=lanes, max_size=lanes)))
    ks = np.array(data.draw(st.lists(st.integers(1, S + 5), min_size=lanes, max_size=lanes)))
    loop = _loop_rounds(next_rejection(A), rows, LaneLookahead(ks), None, True)
    _equal(static_rounds(A, ks, rows, widths=True), loop)
    _equal(si_rounds(next_rejection(A), rows, LaneLookahead(ks), record_widths=True), loop)


@given(outcomes(), st.integers(1, 80))
def test_si_run_static_equals_loop_exactly(A, k):
    """The whole record, floats too, with an affine verification (widths matter) and k beyond S."""
    T, D = AffineLatency(30.0, 1.7), ConstantLatency(3.1)
    _equal(si_run(A, StaticLookahead(k), T, D), si_run(A, _Hidden(StaticLookahead(k)), T, D))


@given(outcomes(max_s=40, max_rows=6), st.integers(1, 12), st.integers(1, 200))
def test_blocks_change_nothing(A, k, block):
    """Engines on blocks of rows (any block size, down to one row) equal one pass, bit for bit."""
    T, D = AffineLatency(30.0, 1.7), ConstantLatency(3.1)
    alpha = np.broadcast_to(np.linspace(0.2, 0.9, A.shape[1]), A.shape)
    policies = (StaticLookahead(k), HeuristicLookahead(k0=min(k, 5), k_max=12), OracleLookahead(k_max=k))
    whole = [si_run(A, p, T, D, signals={"alpha": alpha}) for p in policies]
    whole_dsi = [mc_dsi.dsi_run(A, k, T, D, chain=chain) for chain in (True, False)]
    whole_sweep = si_sweep(A, np.arange(1, 6))
    with pytest.MonkeyPatch.context() as mp:
        for mod in (rounds_mod, mc_si, mc_dsi):
            mp.setattr(mod, "BLOCK_ELEMENTS", block)
        for p, w in zip(policies, whole):
            _equal(si_run(A, p, T, D, signals={"alpha": alpha}), w)
        for chain, w in zip((True, False), whole_dsi):
            _equal(mc_dsi.dsi_run(A, k, T, D, chain=chain), w)
        for x, y in zip(si_sweep(A, np.arange(1, 6)), whole_sweep):
            assert np.array_equal(x, y)


@given(outcomes(), st.integers(1, 12))
def test_des_si_counts_equal_static_rounds(A, k):
    """The discrete-event SI (which calls si_round each round) makes the rounds static_rounds counts."""
    S = A.shape[1]
    s = Scenario.from_ms(10.0, 1.0, 0.5, lookahead=k, tokens=S)
    fast = static_rounds(A, k)
    for i in range(A.shape[0]):
        des = run_once(s, "si", A[i])
        assert des.target_forwards == fast["rounds"][i]
        assert des.drafter_forwards == fast["drafts"][i]


def test_static_rounds_edges():
    S = 9
    none = np.zeros((1, S), dtype=bool)  # a = 0: one token per round, drafts cut only at the end
    r = static_rounds(none, 4, widths=True)
    assert r["rounds"].tolist() == [S] and r["accepted"].tolist() == [0]
    assert r["drafts"].tolist() == [sum(min(4, S - p - 1) for p in range(S))]
    every = np.ones((1, S), dtype=bool)  # a = 1: rounds of k + 1, the last one cut
    r = static_rounds(every, 4, widths=True)
    assert r["rounds"].tolist() == [2] and r["drafts"].tolist() == [4 + 3]
    assert r["width"].tolist() == [4, 5] and r["width_count"].tolist() == [1, 1]
    big = static_rounds(every, 10**12)  # k > S: one round of S − 1 drafts
    assert big["rounds"].tolist() == [1] and big["drafts"].tolist() == [S - 1]
    one = static_rounds(np.zeros((3, 1), dtype=bool), 7, widths=True)  # S = 1: one round, no draft
    assert one["rounds"].tolist() == [1, 1, 1] and one["drafts"].tolist() == [0, 0, 0]
    assert one["width"].tolist() == [1, 1, 1]


# -- positions ------------------------------------------------------------------------------------


@given(outcomes())
def test_positions_against_plain_python(A):
    S = A.shape[1]
    nxt = next_rejection(A)
    rows, r = epoch_lengths(A)
    want_rows, want_r = [], []
    for i, row in enumerate(A.tolist()):
        assert nxt[i].tolist() == [next((j for j in range(p, S) if not row[j]), S) for p in range(S)]
        start = 0
        for j, ok in enumerate(row):
            if not ok:
                want_rows.append(i)
                want_r.append(j + 1 - start)
                start = j + 1
        if start < S:
            want_rows.append(i)
            want_r.append(S - start)
    assert rows.tolist() == want_rows and r.tolist() == want_r


# -- chunks ------------------------------------------------------------------------------------------


@given(st.integers(0, 10**6), st.integers(1, 10**5), st.integers(1, 10**10))
def test_rep_chunks_cover_in_order_within_budget(reps, tokens, budget):
    chunks = list(rep_chunks(reps, tokens, budget))
    assert [lo for lo, _ in chunks] == list(range(0, reps, chunks[0][1] - chunks[0][0])) if chunks else reps == 0
    assert sum(hi - lo for lo, hi in chunks) == reps
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert all(hi - lo == 1 or (hi - lo) * tokens * 40 <= budget for lo, hi in chunks)


def test_chunked_engines_equal_one_pass():
    A = np.random.default_rng(4).random((37, 120)) < 0.7
    T, D = ConstantLatency(1.0), ConstantLatency(0.2)
    for fn in (lambda X: si_run(X, StaticLookahead(3), T, D), lambda X: mc_dsi.dsi_run(X, 3, T, D)):
        whole = fn(A)
        parts = [fn(A[lo:hi]) for lo, hi in rep_chunks(37, 120, budget_bytes=120 * 40 * 5)]
        assert len(parts) == 8
        for name in whole:
            assert np.array_equal(np.concatenate([p[name] for p in parts]), whole[name]), name


# -- event logs streamed to a file ---------------------------------------------------------------------


def _traced(tmp_path, scenario, algorithm, A, **kw):
    path = tmp_path / f"{algorithm}.jsonl"
    mem = EventLog()
    rec_mem = run_once(scenario, algorithm, A, np.random.default_rng(1), log=mem, **kw)
    with EventLog(path=path, keep=True) as both:
        rec_both = run_once(scenario, algorithm, A, np.random.default_rng(1), log=both, **kw)
    with EventLog(path=tmp_path / "only.jsonl") as only:
        rec_only = run_once(scenario, algorithm, A, np.random.default_rng(1), log=only, **kw)
    assert rec_mem == rec_both == rec_only
    assert only.events == [] and not only.streaming
    return path, mem.events, both.events


@pytest.mark.parametrize("algorithm", ["dsi", "si", "nonsi"])
@pytest.mark.parametrize("servers, overheads", [(None, Overheads()), (3, Overheads(0.5, 0.25, 0.125))])
def test_streamed_trace_equals_in_memory(tmp_path, algorithm, servers, overheads):
    s = Scenario(StochasticLatency(ConstantLatency(20.0), 0.2), ConstantLatency(2.5),
                 MarkovAcceptance.from_mean(0.7, 0.8), lookahead=3, servers=servers, tokens=150, prompt_len=4)
    A = s.acceptance.sample(np.random.default_rng(2), s.tokens, 1)[0]
    kw = {"overheads": overheads} if algorithm != "nonsi" else {}
    path, events, kept = _traced(tmp_path, s, algorithm, A, **kw)
    streamed = read_jsonl(path)
    assert streamed == events == kept  # event for event
    assert len(events) > s.tokens / 4
    write_jsonl(tmp_path / "written.jsonl", events)
    assert path.read_bytes() == (tmp_path / "written.jsonl").read_bytes()  # byte for byte
    assert (tmp_path / "only.jsonl").read_bytes() == path.read_bytes()


def test_streamed_trace_is_atomic(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with EventLog(path=path) as log:
            log(0.0, "draft_start", "drafter", None, (0, 3))
            assert path.read_text() == "old\n"  # nothing replaced before close
            raise RuntimeError("run failed")
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]  # temporary file removed
    log = EventLog(path=path)
    log(1.5, "done", "drafter", None, (0, 0))
    log(float("inf"), "odd \"name\"", "lane\n", 7)
    assert log.close() == path and log.close() == path  # closing twice is harmless
    lines = path.read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"t": 1.5, "event": "done", "lane": "drafter", "positions": [0, 0]},
        {"t": float("inf"), "event": "odd \"name\"", "lane": "lane\n", "task": 7},
    ]
    off = EventLog(False, path=tmp_path / "never.jsonl")  # disabled: no file at all
    off(0.0, "done", "drafter")
    off.close()
    assert not (tmp_path / "never.jsonl").exists()


@given(outcomes(max_s=60, max_rows=30), st.integers(1, 15), st.sampled_from([0.01, 0.1, 1 / 3, 0.9, 1.0, 1.4]),
       st.sampled_from([0.0, 0.3]), st.booleans())
def test_dsi_epoch_costs_from_the_length_table_equal_one_pass(A, k, c, slope, chain):
    """dsi_run's table over epoch lengths gives dsi_epoch_table's floats, epoch by epoch, and its row sums."""
    S = A.shape[1]
    rows, r = epoch_lengths(A)
    end = np.cumsum(r)
    start_of_row = np.zeros(A.shape[0], dtype=end.dtype)
    first = np.flatnonzero(np.diff(rows, prepend=-1))
    start_of_row[1:] = end[first[1:] - 1]
    room = S - (end - start_of_row[rows] - r)
    args = (k, c, 1.0 + slope * k, 1.0, chain)
    want = mc_dsi.dsi_epoch_table(r, *args, room=room)
    table, near_end, exact = mc_dsi._length_table(r, room, args)
    per_epoch = table[r - 1]
    per_epoch[near_end] = exact
    for j, name in enumerate(mc_dsi._NAMES):
        assert np.array_equal(per_epoch[:, j], np.broadcast_to(want[name], r.shape)), name
    got = mc_dsi.dsi_run(A, k, AffineLatency(1.0, slope), ConstantLatency(c), chain=chain)
    got["duration_ms"] = got["decode_ms"]
    for name in mc_dsi._NAMES:
        row_sums = np.bincount(rows, weights=np.broadcast_to(want[name], r.shape), minlength=A.shape[0])
        np.testing.assert_allclose(got[name], row_sums, rtol=1e-12, atol=1e-9, err_msg=name)


_names = st.text(st.characters(codec="utf-8"), max_size=12)


@given(st.fixed_dictionaries(
    {"t": st.one_of(st.floats(allow_nan=False), st.integers(-5, 5)), "event": _names, "lane": _names},
    optional={"task": st.one_of(st.integers(-2**70, 2**70), st.booleans()),
              "positions": st.one_of(st.lists(st.integers(-10**20, 10**20), min_size=2, max_size=2),
                                     st.lists(st.integers(0, 9), max_size=3)),
              "extra": st.none()}))
def test_event_lines_are_json_dumps(rec):
    """write_jsonl's direct formatting is json.dumps(record, sort_keys=True), whatever the record holds."""
    from simspec.des.trace import _record_line

    assert _record_line(rec) == json.dumps(rec, sort_keys=True) + "\n"
