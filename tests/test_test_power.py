"""Unit tests that pin exact rules which the rest of the suite only checked loosely (issue 7, "test power").

Each test here fails on a concrete bug that used to pass the suite (or was caught only by a doc example
or an experiment test): FIFO and LIFO swapped, the heuristic schedule's +2 turned into +1, the standard
deviation used for the standard error, discrete-event replications sharing one seed, a lookahead policy
proposing rounds that draft nothing.
"""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import simpy

from simspec import (
    Estimate,
    HeuristicLookahead,
    InvalidParameterError,
    OracleLookahead,
    Scenario,
    StaticLookahead,
)
from simspec.des import simulate
from simspec.des.pool import BusyMeter, ServerPool, Task
from simspec.lookahead import RoundView, checked_proposal

ROOT = Path(__file__).resolve().parents[1]


# -- the server pool's queue discipline ----------------------------------------------------------------


def _start_order(discipline: str, waiting: int = 3) -> list[int]:
    """One server; task 0 takes it, tasks 1..waiting are submitted while it is busy; the order tasks start in."""
    env = simpy.Environment()
    pool = ServerPool(env, 1, discipline, BusyMeter(env), None)
    started: list[int] = []
    done = lambda task: None  # noqa: E731

    original = pool._start

    def spy(task, now):
        started.append(task.id)
        original(task, now)

    pool._start = spy  # the pool calls self._start for every task it starts
    for i in range(waiting + 1):
        pool.submit(Task(i, 0, i, 1, service=10.0, submitted=0.0, on_done=done))
    env.run()
    assert pool.queued == waiting and pool.completed == waiting + 1
    return started


def test_fifo_serves_the_oldest_waiting_task_first():
    assert _start_order("fifo") == [0, 1, 2, 3]


def test_lifo_serves_the_newest_waiting_task_first():
    assert _start_order("lifo") == [0, 3, 2, 1]


def test_queue_delays_follow_the_discipline():
    # service 10 each: under FIFO task i waits 10·i; under LIFO task 3 waits 10, task 2 20, task 1 30
    for discipline, expected in (("fifo", {1: 10.0, 2: 20.0, 3: 30.0}), ("lifo", {3: 10.0, 2: 20.0, 1: 30.0})):
        env = simpy.Environment()
        pool = ServerPool(env, 1, discipline, BusyMeter(env), None)
        tasks = [Task(i, 0, i, 1, 10.0, 0.0, lambda t: None) for i in range(4)]
        for t in tasks:
            pool.submit(t)
        env.run()
        assert {t.id: t.started - t.submitted for t in tasks[1:]} == expected
        assert pool.queue_delay == 60.0


# -- the heuristic lookahead schedule ------------------------------------------------------------------


def _schedule(policy, rounds):
    """The lookaheads a one-lane controller proposes, given (drafted, accepted) per round."""
    ctrl = policy.start(1)
    view = RoundView(np.zeros(1, dtype=np.int64), np.full(1, 10**6), np.zeros(1, dtype=np.int64), {},
                     np.zeros((1, 1), dtype=np.int64))
    out = [int(np.asarray(ctrl.propose(view))[0])]
    for drafted, accepted in rounds:
        ctrl.observe(np.array([drafted]), np.array([accepted]))
        out.append(int(np.asarray(ctrl.propose(view))[0]))
    return out


def test_heuristic_schedule_all_accepted_adds_two_capped_at_k_max():
    pol = HeuristicLookahead(k0=5, k_max=10)
    # all accepted: 5 -> 7 -> 9 -> 10 (cap) -> 10
    assert _schedule(pol, [(5, 5), (7, 7), (9, 9), (10, 10)]) == [5, 7, 9, 10, 10]


def test_heuristic_schedule_a_rejection_subtracts_one_floor_one():
    pol = HeuristicLookahead(k0=3, k_max=10)
    # any rejection: 3 -> 2 -> 1 -> 1 (floor), whatever was accepted before it
    assert _schedule(pol, [(3, 2), (2, 0), (1, 0), (1, 0)]) == [3, 2, 1, 1, 1]
    # then all accepted again: +2
    assert _schedule(pol, [(3, 0), (2, 2)]) == [3, 2, 4]


def test_heuristic_schedule_round_cut_short_by_the_end_counts_as_all_accepted():
    # near the end a round drafts fewer than proposed; all of those accepted is "all accepted" (+2)
    assert _schedule(HeuristicLookahead(k0=5, k_max=20), [(2, 2)]) == [5, 7]


def test_heuristic_schedule_is_per_lane():
    ctrl = HeuristicLookahead(k0=4, k_max=6).start(3)
    ctrl.observe(np.array([4, 4, 4]), np.array([4, 3, 0]))
    assert ctrl.k.tolist() == [6, 3, 3]
    ctrl.observe(np.array([6, 3, 3]), np.array([6, 3, 1]))
    assert ctrl.k.tolist() == [6, 5, 2]


# -- Estimate.from_samples: the standard error, not the standard deviation -------------------------------


def test_estimate_from_samples_uses_the_standard_error_of_the_mean():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]  # mean 3, sample sd sqrt(2.5), standard error sqrt(2.5)/sqrt(5) = sqrt(0.5)
    e = Estimate.from_samples(x)
    assert e.mean == 3.0 and e.n == 5
    assert e.stderr == pytest.approx(math.sqrt(0.5), rel=1e-12)
    half = 1.959963984540054 * math.sqrt(0.5)
    assert (e.low, e.high) == (pytest.approx(3.0 - half, rel=1e-12), pytest.approx(3.0 + half, rel=1e-12))


def test_estimate_interval_shrinks_like_one_over_root_n():
    base = np.array([0.0, 1.0])
    e1 = Estimate.from_samples(base)
    e4 = Estimate.from_samples(np.tile(base, 8))  # 16 values, same spread
    assert e1.stderr == pytest.approx(math.sqrt(0.5) / math.sqrt(2), rel=1e-12)  # sd(ddof=1) = sqrt(1/2)
    assert e4.stderr == pytest.approx(math.sqrt(16 / 15 * 0.25) / 4, rel=1e-12)
    assert e4.high - e4.low < (e1.high - e1.low) / 3


def test_estimate_ratio_of_identical_paired_samples_is_exact():
    x = np.array([10.0, 12.0, 11.0, 13.0])
    r = Estimate.ratio(2 * x, x)
    assert r.mean == pytest.approx(2.0) and r.stderr == pytest.approx(0.0, abs=1e-12)


# -- discrete-event replications: one seed each, reproducible ------------------------------------------


def test_des_replications_get_distinct_outcomes():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=200)
    res = simulate(s, "si", replications=8, rng=3)
    lat = [r.latency_ms for r in res.runs]
    rej = [r.rejections for r in res.runs]
    # one shared seed would make every replication the same run
    assert len(set(lat)) >= 6 and len(set(rej)) >= 4, (lat, rej)


def test_des_same_seed_reproduces_and_other_seeds_differ():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=200, servers=3)
    a = simulate(s, "dsi", replications=5, rng=11)
    b = simulate(s, "dsi", replications=5, rng=11)
    c = simulate(s, "dsi", replications=5, rng=12)
    assert a.runs == b.runs
    assert [r.latency_ms for r in a.runs] != [r.latency_ms for r in c.runs]


def test_des_replication_i_does_not_depend_on_how_many_replications_run():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=200)
    few = simulate(s, "si", replications=3, rng=5).runs
    many = simulate(s, "si", replications=7, rng=5).runs
    assert few == many[:3]


# -- a policy that proposes rounds drafting nothing ---------------------------------------------------


def test_checked_proposal_refuses_k_below_one():
    with pytest.raises(InvalidParameterError, match="k >= 1"):
        checked_proposal(np.array([3, 0, 2]))
    with pytest.raises(InvalidParameterError, match="k >= 1"):
        checked_proposal(np.array([-1]))
    with pytest.raises(InvalidParameterError, match="integer"):
        checked_proposal(np.array([1.5]))
    with pytest.raises(InvalidParameterError, match="integer"):
        checked_proposal(np.array([True]))
    # finished lanes may propose anything
    assert checked_proposal(np.array([0, 4]), active=np.array([False, True])).tolist() == [0, 4]
    assert checked_proposal(3, active=np.ones(2, dtype=bool)).tolist() == [3, 3]


@pytest.mark.parametrize("policy", [StaticLookahead(1), StaticLookahead(7), HeuristicLookahead(2, 9),
                                    OracleLookahead(50)])
def test_built_in_policies_pass_checked_proposal_on_every_active_lane(policy):
    # drive the Monte Carlo's round loop by hand and check every proposal of a lane still generating
    rng = np.random.default_rng(0)
    from simspec.montecarlo.positions import next_rejection

    A = rng.random((6, 80)) < 0.7
    nxt = next_rejection(A)
    ctrl = policy.start(6)
    pos = np.zeros(6, dtype=np.int64)
    rows = np.arange(6)
    while (pos < 80).any():
        active = pos < 80
        k = checked_proposal(ctrl.propose(RoundView(pos, 80 - pos, rows, {}, nxt)), active)
        k = np.where(active, np.minimum(k, 80 - pos - 1), 0)
        n = np.where(active, np.minimum(nxt[rows, np.minimum(pos, 79)] - pos, k), 0)
        ctrl.observe(k, n)
        pos = pos + np.where(active, n + 1, 0)


class _DraftsNothing:
    """A broken policy: every round drafts nothing."""

    name = "drafts nothing"
    static_k = None

    def start(self, lanes):
        class _C:
            def propose(self, view):
                return np.zeros(lanes, dtype=np.int64)

            def observe(self, drafted, accepted):
                pass

        return _C()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("engine", ["montecarlo", "des"])
def test_si_engines_refuse_a_policy_that_drafts_nothing(engine):
    from simspec import compare

    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=_DraftsNothing(), tokens=50)
    try:
        if engine == "montecarlo":
            compare(s, "montecarlo", replications=2, rng=0)
        else:
            simulate(s, "si", replications=1, rng=0)
    except InvalidParameterError as exc:
        assert "k >= 1" in str(exc)
        return
    raise AssertionError("the SI engine ran rounds that draft nothing instead of refusing the policy")


# -- a hang fails fast ----------------------------------------------------------------------------------


def test_pytest_timeout_is_configured():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(dep.startswith("pytest-timeout") for dep in conf["project"]["optional-dependencies"]["test"])
    assert 0 < int(conf["tool"]["pytest"]["ini_options"]["timeout"]) <= 600
