"""Trace files: per-position acceptance traces and per-round traces, read, written and replayed."""

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simspec import ConstantLatency, TraceAcceptance
from simspec.errors import InvalidParameterError, TraceFormatError
from simspec.montecarlo.si import si_run
from simspec.traces import (
    RecordedLookahead,
    RoundTrace,
    load_acceptance_trace,
    load_round_trace,
    write_acceptance_trace,
    write_round_trace,
)

HEADER = {"format": "simspec-acceptance-trace", "version": 1, "provenance": {"target": "t", "drafter": "d"}}


def _write_lines(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return path


# -- per-position acceptance traces ----------------------------------------------------------------

def test_acceptance_trace_round_trip(tmp_path):
    records = [
        {"prompt": "p0", "prompt_len": 12, "outcomes": [1, 1, 0, None, 1],
         "signals": {"top1_prob": [0.9, 0.8, 0.3, None, 0.7], "entropy": [0.1, 0.2, 1.5, 0.3, 0.4]}},
        {"prompt": 7, "prompt_len": 30, "outcomes": [True, False, True]},
    ]
    path = write_acceptance_trace(tmp_path / "a.jsonl", records, provenance={"corpus": "demo", "k": 10})
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "simspec-acceptance-trace", "version": 1,
                                    "provenance": {"corpus": "demo", "k": 10}}
    acc = load_acceptance_trace(path)
    assert acc.traces == ((True, True, False, None, True), (True, False, True))
    assert acc.prompts == ("p0", "7") and acc.prompt_lens == (12, 30)
    assert acc.provenance == {"corpus": "demo", "k": 10}
    assert sorted(acc.signals) == ["entropy", "top1_prob"]
    np.testing.assert_array_equal(acc.signals["top1_prob"][0], [0.9, 0.8, 0.3, np.nan, 0.7])
    assert np.isnan(acc.signals["top1_prob"][1]).all()  # a signal a prompt lacks is NaN there
    # writing the loaded process gives the same file
    again = write_acceptance_trace(tmp_path / "b.jsonl", acc)
    assert load_acceptance_trace(again).traces == acc.traces
    assert [json.loads(x)["outcomes"] for x in again.read_text().splitlines()[1:]] == [[1, 1, 0, None, 1], [1, 0, 1]]


def test_unobserved_positions_are_filled_at_the_after_accept_rate_with_the_draws_rng():
    # trace 0: pairs after an observed accept: (1->1), (1->0) -> fill rate 1/2
    # trace 1: no observed accept followed by an observed position -> its observed rate, 1/3
    acc = TraceAcceptance.from_arrays([[1, 1, None, 1, 0, 1], [0, None, 0, 1, None, None]])
    np.testing.assert_allclose(acc.fill_rates, [0.5, 1 / 3])
    assert acc.mean == pytest.approx(5 / 8)  # observed positions only: 4 of 5, 1 of 3
    d = acc.draw(np.random.default_rng(3), 6, reps=4)
    # the exact rule: pick traces, then one uniform per unobserved cell (row-major) against the trace's rate
    rng = np.random.default_rng(3)
    pick = rng.integers(0, 2, size=4)
    table = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 0, 1, 0, 0]], dtype=bool)[pick]
    missing = np.array([[0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 1, 1]], dtype=bool)[pick]
    rows, cols = np.nonzero(missing)
    table[rows, cols] = rng.random(rows.size) < acc.fill_rates[pick[rows]]
    np.testing.assert_array_equal(d.accepted, table)
    np.testing.assert_array_equal(d.units, pick)
    # a filled position is accepted at the fill rate, never always
    big = TraceAcceptance.from_arrays([[1, 1, None, 1, 0, 1]]).sample(np.random.default_rng(0), 6, reps=20000)
    assert abs(big[:, 2].mean() - 0.5) < 0.02
    assert (big[:, [0, 1, 3, 4, 5]] == np.array([1, 1, 1, 0, 1], dtype=bool)).all()


def test_traces_without_unobserved_positions_draw_as_before():
    acc = TraceAcceptance.from_arrays([[1, 0, 1, 1], [0, 0, 1, 0]])
    d = acc.draw(np.random.default_rng(5), 4, reps=6)
    pick = np.random.default_rng(5).integers(0, 2, size=6)
    np.testing.assert_array_equal(d.accepted, np.array([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=bool)[pick])
    assert d.signals == {}


def test_signals_come_back_aligned_with_the_drawn_rows(tmp_path):
    path = _write_lines(tmp_path / "s.jsonl", [HEADER,
                        {"prompt": "a", "outcomes": [1, 0, 1], "signals": {"top1_prob": [0.9, 0.2, 0.8]}},
                        {"prompt": "b", "outcomes": [0, 1, 1], "signals": {"top1_prob": [0.1, 0.7, None]}}])
    acc = load_acceptance_trace(path, wrap=True)
    d = acc.draw(np.random.default_rng(1), 5, reps=8)
    rows = {0: [0.9, 0.2, 0.8, 0.9, 0.2], 1: [0.1, 0.7, np.nan, 0.1, 0.7]}
    for r, unit in enumerate(d.units):
        np.testing.assert_array_equal(d.signals["top1_prob"][r], rows[int(unit)])


@pytest.mark.parametrize("lines, match", [
    ([{"prompt": "a", "outcomes": [1]}], r"x\.jsonl:1:1: the first line must be the header"),
    ([{**HEADER, "version": 2}, {"prompt": "a", "outcomes": [1]}], r"x\.jsonl:1:\d+: .*version 2 is newer"),
    ([{**HEADER, "format": "other"}], r"x\.jsonl:1:\d+: the header says format 'other'"),
    ([HEADER], r"x\.jsonl: the header is the only line"),
    ([HEADER, {"prompt": "a", "outcomes": [1, 2]}], r"x\.jsonl:2:\d+: outcomes\[1\] is 2"),
    ([HEADER, {"prompt": "a", "outcomes": []}], r"x\.jsonl:2:\d+: \"outcomes\" must be a non-empty list"),
    ([HEADER, {"prompt": "a", "outcomes": [None]}], r"x\.jsonl:2:\d+: prompt 'a' has no observed outcome"),
    ([HEADER, {"outcomes": [1]}], r"x\.jsonl:2:1: missing \"prompt\""),
    ([HEADER, {"prompt": "a", "outcome": [1]}], r"x\.jsonl:2:\d+: unknown key 'outcome'"),
    ([HEADER, {"prompt": "a", "prompt_len": -1, "outcomes": [1]}], r"x\.jsonl:2:\d+: \"prompt_len\" must be"),
    ([HEADER, {"prompt": "a", "outcomes": [1, 0], "signals": {"e": [0.1]}}], r"x\.jsonl:2:\d+: signal 'e' must"),
    ([HEADER, {"prompt": "a", "outcomes": [1]}, {"prompt": "a", "outcomes": [0]}],
     r"x\.jsonl:3:\d+: prompt 'a' already appeared on line 2"),
])
def test_bad_acceptance_traces_name_file_line_and_column(tmp_path, lines, match):
    path = _write_lines(tmp_path / "x.jsonl", lines)
    with pytest.raises(TraceFormatError, match=match):
        load_acceptance_trace(path)


def test_bad_json_and_bytes_name_the_line_and_column(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(HEADER) + '\n{"prompt": "a", "outcomes": [1, 0,]}\n')
    with pytest.raises(TraceFormatError, match=r"x\.jsonl:2:\d+: not valid JSON"):
        load_acceptance_trace(path)
    path.write_bytes(json.dumps(HEADER).encode() + b'\n{"prompt": "\xff"}\n')
    with pytest.raises(TraceFormatError, match=r"x\.jsonl:2:13: not UTF-8"):
        load_acceptance_trace(path)
    with pytest.raises(TraceFormatError, match="no such file"):
        load_acceptance_trace(tmp_path / "missing.jsonl")


def test_writer_refuses_bad_records(tmp_path):
    with pytest.raises(InvalidParameterError, match="record 1 .*outcomes"):
        write_acceptance_trace(tmp_path / "w.jsonl", [{"prompt": "a", "outcomes": [1]},
                                                      {"prompt": "b", "outcomes": [3]}])
    with pytest.raises(InvalidParameterError, match="appears twice"):
        write_acceptance_trace(tmp_path / "w.jsonl", [{"prompt": "a", "outcomes": [1]},
                                                      {"prompt": "a", "outcomes": [0]}])
    with pytest.raises(InvalidParameterError, match="signal 's'"):
        write_acceptance_trace(tmp_path / "w.jsonl", [{"prompt": "a", "outcomes": [1, 0], "signals": {"s": [1.0]}}])
    assert not (tmp_path / "w.jsonl").exists()  # nothing half-written


# -- per-round traces ------------------------------------------------------------------------------

ROUNDS = [
    {"prompt": "a", "prompt_len": 10, "round": 0, "drafted": 4, "accepted": 4, "drafter_forwards": 4},
    {"prompt": "b", "prompt_len": 20, "round": 0, "drafted": 3, "accepted": 0},
    {"prompt": "a", "prompt_len": 10, "round": 1, "drafted": 4, "accepted": 1, "drafter_forwards": 4},
    {"prompt": "a", "prompt_len": 10, "round": 2, "drafted": 0, "accepted": 0, "drafter_forwards": 0},
    {"prompt": "a", "prompt_len": 10, "round": 3, "drafted": 2, "accepted": 1, "extra": "ignored"},
    {"prompt": "b", "prompt_len": 20, "round": 1, "drafted": 3, "accepted": 3},
]


def test_round_trace_round_trip_keeps_zero_candidate_rounds(tmp_path):
    path = tmp_path / "r.jsonl"
    _write_lines(path, ROUNDS)  # no header: optional
    rt = load_round_trace(path)
    a, b = rt.prompts
    assert (a.prompt, a.prompt_len, a.drafted, a.accepted, a.drafter_forwards) == ("a", 10, (4, 4, 0, 2), (4, 1, 0, 1),
                                                                                  (4, 4, 0, 2))
    assert a.tokens == 5 + 2 + 1 + 2 and b.tokens == 1 + 4
    out = write_round_trace(tmp_path / "w.jsonl", rt, provenance={"engine": "hf"})
    assert json.loads(out.read_text().splitlines()[0])["format"] == "simspec-round-trace"
    again = load_round_trace(out)
    assert again.prompts == rt.prompts and again.provenance == {"engine": "hf"}


def test_round_trace_acceptance_outcomes():
    rt = RoundTrace.from_rows(ROUNDS)
    acc = rt.acceptance()
    # a: full round of 4 (bonus unobserved), 1 of 4 then a rejection, no candidate (no outcome), 1 of 2
    assert acc.traces[0] == (True, True, True, True, None, True, False, True, False)
    assert acc.traces[1] == (False, True, True, True, None)
    assert acc.prompts == ("a", "b") and acc.prompt_lens == (10, 20)
    np.testing.assert_array_equal(acc.signals["recorded_lookahead"][0], [4, 4, 4, 4, 4, 4, 4, 2, 2])


class _Spy:
    """Wraps a policy and records what it proposes at each round of each lane."""

    def __init__(self, policy):
        self.policy, self.log = policy, []
        self.name, self.static_k = policy.name, None

    def start(self, lanes):
        ctrl, log = self.policy.start(lanes), self.log

        class C:
            def propose(self, view):
                k = ctrl.propose(view)
                log.append((view.position.copy(), np.asarray(k).copy()))
                return k

            def observe(self, d, a):
                ctrl.observe(d, a)
        return C()


@pytest.mark.parametrize("seed", [0, 1])
def test_recorded_lookahead_reproduces_the_recorded_rounds(seed):
    rows = [
        {"prompt": "a", "drafted": 4, "accepted": 4}, {"prompt": "a", "drafted": 4, "accepted": 1},
        {"prompt": "a", "drafted": 3, "accepted": 0}, {"prompt": "a", "drafted": 5, "accepted": 5},
        {"prompt": "a", "drafted": 2, "accepted": 1},
        {"prompt": "b", "drafted": 1, "accepted": 0}, {"prompt": "b", "drafted": 6, "accepted": 2},
        {"prompt": "b", "drafted": 6, "accepted": 6},
    ]
    rt = RoundTrace.from_rows(rows)
    acc = rt.acceptance()
    for i, p in enumerate(rt.prompts):
        one = TraceAcceptance((acc.traces[i],), signals={"recorded_lookahead": (acc.signals["recorded_lookahead"][i],)})
        d = one.draw(np.random.default_rng(seed), len(acc.traces[i]), 1)
        spy = _Spy(rt.lookahead())
        res = si_run(d.accepted, spy, ConstantLatency(1.0), ConstantLatency(1.0), signals=d.signals)
        assert int(res["rounds"][0]) == p.rounds
        assert int(res["accepted_drafts"][0]) == sum(p.accepted)
        assert int(res["accepted_drafts"][0] + res["rounds"][0]) == p.tokens  # the recorded tokens
        proposed = [int(k[0]) for _, k in spy.log]
        assert proposed == list(p.drafted)  # every round proposes its recorded lookahead
        # drafts made: the recorded ones, but for the last round's cut at the end of generation
        last_cut = min(p.drafted[-1], p.accepted[-1])
        assert int(res["drafter_forwards"][0]) == sum(p.drafted[:-1]) + last_cut


def test_recorded_lookahead_needs_its_signal():
    with pytest.raises(InvalidParameterError, match="recorded_lookahead"):
        si_run(np.ones((1, 5), dtype=bool), RecordedLookahead(), ConstantLatency(1.0), ConstantLatency(1.0))


@pytest.mark.parametrize("bad, match", [
    ({"prompt": "a", "round": 0, "drafted": 2, "accepted": 3}, r"r\.jsonl:2:\d+: accepted = 3 exceeds drafted = 2"),
    ({"prompt": "a", "round": 0, "drafted": -1, "accepted": 0}, r"r\.jsonl:2:\d+: \"drafted\" must be an integer"),
    ({"prompt": "a", "round": 0, "accepted": 0}, r"r\.jsonl:2:1: missing \"drafted\""),
    ({"prompt": "a", "round": 2, "drafted": 1, "accepted": 0}, r"r\.jsonl:3:\d+: prompt 'a': round 2 follows round 0"),
    ({"prompt": "a", "prompt_len": 9, "round": 1, "drafted": 1, "accepted": 0}, r"r\.jsonl:3:\d+: prompt 'a' has "
                                                                                r"prompt_len 9 here but 5 before"),
    ([1, 2], r"r\.jsonl:2:1: expected one object per round"),
    ({"prompt": "a", "round": 0, "drafted": 2, "accepted": 0, "drafter_widths": [3]},
     r"r\.jsonl:2:\d+: \"drafter_widths\" lists 1 forwards but the round has drafter_forwards = 2"),
    ({"prompt": "a", "round": 0, "drafted": 1, "accepted": 0, "drafter_widths": [0]},
     r"r\.jsonl:2:\d+: \"drafter_widths\" must be a list of integers >= 1"),
])
def test_bad_round_traces_name_file_line_and_column(tmp_path, bad, match):
    head = {"format": "simspec-round-trace", "version": 1, "provenance": {}}
    first = {"prompt": "a", "prompt_len": 5, "round": 0, "drafted": 1, "accepted": 1}
    lines = [head, bad] if isinstance(bad, list) or bad.get("round") == 0 else [head, first, bad]
    path = _write_lines(tmp_path / "r.jsonl", lines)
    with pytest.raises(TraceFormatError, match=match):
        load_round_trace(path)


# -- fuzzing: bad files are named errors, never raw tracebacks ----------------------------------------

_LOCATED = re.compile(r"\.jsonl(:\d+:\d+)?: ")

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["prompt", "prompt_len", "outcomes", "signals", "round", "drafted", "accepted",
                         "drafter_forwards", "format", "version", "provenance", "x"]), inner, max_size=5),
    max_leaves=12)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(lines=st.lists(_json_values, min_size=0, max_size=4), raw=st.binary(max_size=40), use_raw=st.booleans())
def test_fuzzed_files_load_or_raise_a_located_error(tmp_path, lines, raw, use_raw):
    path = tmp_path / "fuzz.jsonl"
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    path.write_bytes(json.dumps(HEADER).encode() + b"\n" + (raw if use_raw else body))
    for loader in (load_acceptance_trace, load_round_trace):
        try:
            loader(path)
        except TraceFormatError as exc:
            assert "fuzz.jsonl" in str(exc) and _LOCATED.search(str(exc)), str(exc)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(record=st.dictionaries(st.sampled_from(["prompt", "prompt_len", "outcomes", "signals"]), _json_values,
                              max_size=4))
def test_fuzzed_prompt_lines_name_line_two(tmp_path, record):
    path = _write_lines(tmp_path / "fuzz.jsonl", [HEADER, record])
    try:
        acc = load_acceptance_trace(path)
    except TraceFormatError as exc:
        assert re.search(r"fuzz\.jsonl:2:\d+: ", str(exc)), str(exc)
    else:
        assert len(acc.traces) == 1


def test_the_cli_reads_every_trace_form(tmp_path):
    """--acceptance-trace takes the text form, the per-position JSON lines and the per-round JSON lines alike."""
    from simspec.cli import main
    from simspec.traces import read_acceptance

    text = tmp_path / "t.txt"
    text.write_text("1101110\n")
    per_pos = tmp_path / "p.jsonl"
    write_acceptance_trace(per_pos, [{"prompt": "a", "prompt_len": 3, "outcomes": [1, 1, 0, 1, 1, 1, 0]}])
    rounds = tmp_path / "r.jsonl"
    rounds.write_text('{"prompt": "a", "round": 0, "drafted": 3, "accepted": 2}\n'
                      '{"prompt": "a", "round": 1, "drafted": 3, "accepted": 1}\n')
    assert read_acceptance(text).traces == ((True, True, False, True, True, True, False),)
    assert read_acceptance(per_pos).traces == ((True, True, False, True, True, True, False),)
    assert read_acceptance(rounds).traces[0][:5] == (True, True, False, True, False)
    for f in (text, per_pos, rounds):
        assert main(["compare", "--target-ms", "30", "--drafter-ms", "3", "--acceptance-trace", str(f), "--wrap",
                     "--method", "montecarlo", "--lookahead", "2", "--tokens", "20", "--reps", "4"]) == 0
