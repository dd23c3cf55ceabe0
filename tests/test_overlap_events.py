"""Event logs of tree SI, PEARL and the pipeline: hand-computed timelines, and logging changes no result.

The Gantt chart (``simspec.gantt_figure``, ``simspec simulate --gantt``) draws these logs; the rules pinned
here are the ones ``simspec.des.overlap`` and ``simspec.des.tree`` state: PEARL's drafting block and target
forward run side by side within a round; the pipeline drafts one token a forward and abandons the draft in
flight at a rejection (``draft_cancel``); a chain tree's log is SI's, event for event.
"""

from __future__ import annotations

import numpy as np
import pytest

from simspec import ConstantLatency, IIDAcceptance, Overheads, Scenario, StochasticLatency, TokenTree, simulate
from simspec.des.runner import run_once
from simspec.des.trace import EventLog
from simspec.des.tree import TreeSpec
from simspec.plots import gantt_figure
from simspec.trees import PositionalTreeAcceptance


def _scenario(S, k, target=10.0, drafter=3.0, overheads=None):
    s = Scenario(ConstantLatency(target), ConstantLatency(drafter), IIDAcceptance(0.5), lookahead=k, tokens=S)
    return s if overheads is None else s.replace(overheads=overheads)


def events_of(scenario, algorithm, accepted, **kw) -> list[tuple]:
    log = EventLog(True)
    run_once(scenario, algorithm, np.asarray(accepted, bool), log=log, **kw)
    return [(e["t"], e["event"], e["lane"], e.get("task"), tuple(e["positions"]) if e.get("positions") else None)
            for e in log.events]


def test_pearl_rounds_by_hand():
    """gamma = 3, T = 10, d = 3, S = 4, outcomes 1, 0, 1, 1.

    Round 1 [0, 10], pre-verify at 0: the target decodes position 0 while the drafter drafts 0..2 (9 ms); x0 is
    accepted. Round 2 [10, 20], post-verify of the window 1..2: verification [1, 3] while the drafter drafts
    3 (one position left after the window; 3 ms); x1 is rejected: positions 1 (the target's token) confirmed.
    Round 3 [20, 30], pre-verify at 2 while drafting 2..3 (6 ms): accepted. Round 4 [30, 40], post-verify of
    the window 3 (the last position: no bonus slot, nothing left to draft): x3 accepted.
    """
    ev = events_of(_scenario(4, 3), "pearl", [1, 0, 1, 1])
    assert ev == [
        (0.0, "draft_start", "drafter", None, (0, 2)), (0.0, "verify_start", "server 0", 1, (0, 0)),
        (9.0, "draft_end", "drafter", None, (0, 2)), (10.0, "verify_end", "server 0", 1, (0, 0)),
        (10.0, "confirm", "server 0", 1, (0, 0)),
        (10.0, "draft_start", "drafter", None, (3, 3)), (10.0, "verify_start", "server 0", 2, (1, 3)),
        (13.0, "draft_end", "drafter", None, (3, 3)), (20.0, "verify_end", "server 0", 2, (1, 3)),
        (20.0, "reject", "drafter", None, (1, 1)), (20.0, "confirm", "server 0", 2, (1, 1)),
        (20.0, "draft_start", "drafter", None, (2, 3)), (20.0, "verify_start", "server 0", 3, (2, 2)),
        (26.0, "draft_end", "drafter", None, (2, 3)), (30.0, "verify_end", "server 0", 3, (2, 2)),
        (30.0, "confirm", "server 0", 3, (2, 2)),
        (30.0, "verify_start", "server 0", 4, (3, 3)), (40.0, "verify_end", "server 0", 4, (3, 3)),
        (40.0, "confirm", "server 0", 4, (3, 3)),
        (40.0, "done", "drafter", None, (3, 3)),
    ]


def test_pearl_overheads_place_the_drafter_and_the_target_on_their_own_timelines():
    """message 1, start-up 0.5, sync 2: after the rejection of round 2 the drafter starts 2 ms late; the
    target's forward starts a message after the round does and is busy start-up + T."""
    ov = Overheads(message_ms=1.0, startup_ms=0.5, sync_ms=2.0)
    ev = events_of(_scenario(4, 3, overheads=ov), "pearl", [1, 0, 1, 1])
    starts = [(t, event, pos) for t, event, _, _, pos in ev if event in ("draft_start", "verify_start")]
    ends = [(t, event, pos) for t, event, _, _, pos in ev if event in ("draft_end", "verify_end")]
    # round 1: [0, 12.5] (target path 2 + 0.5 + 10), round 2: [12.5, 25], round 3 starts at 25 after a rejection
    assert starts[:2] == [(0.0, "draft_start", (0, 2)), (1.0, "verify_start", (0, 0))]
    assert ends[:2] == [(9.0, "draft_end", (0, 2)), (11.5, "verify_end", (0, 0))]
    assert (27.0, "draft_start", (2, 3)) in starts and (26.0, "verify_start", (2, 2)) in starts


def test_pipeline_events_by_hand():
    """T = 10, d = 3, S = 3, all rejected (the pipeline's abandon rule, drawn).

    Draft 0 [0, 3]; verification of it [3, 13] (the drafter, woken first, logs draft 1 at 3 before it),
    meanwhile draft 1 [3, 6] and draft 2 is not made (the last
    position is the target's); x0 rejected at 13: position 0 confirmed, the drafter restarts and drafts 1
    [13, 16]; verification [16, 26], rejected; the last position decoded [26, 36].
    """
    ev = events_of(_scenario(3, 50), "pipeline", [0, 0, 0])
    assert ev == [
        (0.0, "draft_start", "drafter", None, (0, 0)), (3.0, "draft_end", "drafter", None, (0, 0)),
        (3.0, "draft_start", "drafter", None, (1, 1)), (3.0, "verify_start", "server 0", 1, (0, 1)),
        (6.0, "draft_end", "drafter", None, (1, 1)),
        (13.0, "verify_end", "server 0", 1, (0, 1)), (13.0, "reject", "drafter", None, (0, 0)),
        (13.0, "confirm", "server 0", 1, (0, 0)),
        (13.0, "draft_start", "drafter", None, (1, 1)), (16.0, "draft_end", "drafter", None, (1, 1)),
        (16.0, "verify_start", "server 0", 2, (1, 2)), (26.0, "verify_end", "server 0", 2, (1, 2)),
        (26.0, "reject", "drafter", None, (1, 1)), (26.0, "confirm", "server 0", 2, (1, 1)),
        (26.0, "verify_start", "server 0", 3, (2, 2)), (36.0, "verify_end", "server 0", 3, (2, 2)),
        (36.0, "confirm", "server 0", 3, (2, 2)), (36.0, "done", "drafter", None, (2, 2)),
    ]


def test_pipeline_logs_the_draft_abandoned_in_flight():
    """The abandon rule of ``test_pipeline_rejection_abandons_the_draft_in_flight_and_syncs``: at 14, 2 ms
    into draft 3's forward, the draft is cancelled."""
    ev = events_of(_scenario(6, 50, overheads=Overheads(per_draft_token_ms=1.0, sync_ms=2.0)), "pipeline",
                   [0] * 6)
    assert (12.0, "draft_start", "drafter", None, (3, 3)) in ev
    assert (14.0, "draft_cancel", "drafter", None, (3, 3)) in ev
    assert (16.0, "draft_start", "drafter", None, (1, 1)) in ev  # after the 2 ms sync


def test_a_chain_trees_log_is_sis_event_for_event():
    s = Scenario(ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), lookahead=4, tokens=80)
    spec = TreeSpec(TokenTree.chain(4), PositionalTreeAcceptance.from_chain_rate(0.7))
    acc = np.random.default_rng(3).random(80) < 0.7
    assert events_of(s, "tree", acc, lookahead=spec) == events_of(s, "si", acc)


def test_a_tree_round_logs_its_depth_and_the_rescue():
    """A 2-ary tree of depth 2 at S = 5: drafting [p, p + 1] and verification [p, p + 2]; with every rank-1
    draft rejected and siblings accepted at rate 1, a round emits 3 tokens with no rejection."""
    s = Scenario(ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), lookahead=2, tokens=5)
    law = PositionalTreeAcceptance(np.array([[0.0, 1.0], [0.0, 1.0]]))
    ev = events_of(s, "tree", [0] * 5, lookahead=TreeSpec(TokenTree.k_ary([2, 2]), law))
    blocks = [(e, pos) for _, e, _, _, pos in ev if e in ("draft_start", "verify_start", "reject", "confirm")]
    assert blocks == [("draft_start", (0, 1)), ("verify_start", (0, 2)), ("confirm", (0, 2)),
                      ("draft_start", (3, 3)), ("verify_start", (3, 4)), ("confirm", (3, 4))]


ALGORITHMS = ["pearl", "pipeline", "tree"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("stochastic", [False, True])
def test_logging_changes_no_result_and_the_log_is_a_timeline(algorithm, stochastic):
    """With and without a log, the same runs (times, counts); the log's times never go back, every bar ends,
    a lane's bars do not overlap, and the confirmed positions partition 0..S-1 in order."""
    lat = (lambda ms: StochasticLatency(ConstantLatency(ms), cv=0.3)) if stochastic else ConstantLatency
    s = Scenario(lat(30.0), lat(4.0), IIDAcceptance(0.7), lookahead=4, tokens=120).replace(
        overheads=Overheads(message_ms=0.5, sync_ms=1.0, startup_ms=0.3, per_draft_token_ms=0.1))
    traced = simulate(s, algorithm, replications=3, rng=5, trace=True)
    plain = simulate(s, algorithm, replications=3, rng=5)
    assert [r.to_dict() for r in traced.runs] == [r.to_dict() for r in plain.runs]
    ev = traced.events
    times = [e["t"] for e in ev]
    assert times == sorted(times)
    confirmed = [i for e in ev if e["event"] == "confirm" for i in range(e["positions"][0], e["positions"][1] + 1)]
    assert confirmed == list(range(120))
    assert ev[-1]["event"] == "done" and ev[-1]["t"] == pytest.approx(traced.runs[0].latency_ms)
    for kind, lane in (("draft", "drafter"), ("verify", "server 0")):
        bars, open_ = [], None
        for e in ev:
            if e["lane"] != lane or not e["event"].startswith(kind + "_"):
                continue
            if e["event"].endswith("_start"):
                assert open_ is None, f"two {kind} bars at once on {lane}"
                open_ = e["t"]
            else:
                assert open_ is not None
                bars.append((open_, e["t"]))
                open_ = None
        assert open_ is None and bars and all(t1 >= t0 for t0, t1 in bars)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_gantt_chart_draws_every_algorithm(algorithm):
    s = Scenario(ConstantLatency(30.0), ConstantLatency(4.0), IIDAcceptance(0.7), lookahead=4, tokens=40)
    res = simulate(s, algorithm, replications=1, rng=1, trace=True)
    fig = gantt_figure(res.events, algorithm)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "drafter" in labels and "server 0" in labels
    drawn = sum(len(c.get_paths()) for c in ax.collections)  # broken_barh: one path per bar
    assert drawn >= sum(1 for e in res.events if e["event"] in ("draft_start", "verify_start"))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_simulate_command_draws_and_streams_every_algorithm(algorithm, tmp_path, capsys):
    from simspec.cli import main
    from simspec.des import read_jsonl

    gantt, trace = tmp_path / "g.png", tmp_path / "t.jsonl"
    rc = main(["simulate", "--algorithm", algorithm, "--target-ms", "30", "--drafter-ms", "4", "--acceptance", "0.7",
               "--tokens", "60", "--replications", "2", "--gantt", str(gantt), "--trace", str(trace)])
    assert rc == 0
    assert gantt.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ev = read_jsonl(trace)
    assert ev[-1]["event"] == "done" and {e["lane"] for e in ev} == {"drafter", "server 0"}
    assert f"wrote {gantt}" in capsys.readouterr().out
