"""Acceptance processes: laws, reproducibility, and clear errors."""

import numpy as np
import pytest

from simspec import (
    IIDAcceptance,
    InvalidParameterError,
    MarkovAcceptance,
    ScheduleAcceptance,
    TraceAcceptance,
    TraceFormatError,
)

Z = 5.0  # 5-sigma tolerances: false-alarm rate ~6e-7 per check


def test_iid_rate_matches_within_5_sigma():
    a = 0.7
    x = IIDAcceptance(a).sample(np.random.default_rng(11), 2000, 50)
    assert x.shape == (50, 2000) and x.dtype == bool
    se = np.sqrt(a * (1 - a) / x.size)
    assert abs(x.mean() - a) < Z * se


def test_same_seed_same_outcomes_and_different_seed_differs():
    p = IIDAcceptance(0.5)
    a1 = p.sample(np.random.default_rng(3), 100, 4)
    a2 = p.sample(np.random.default_rng(3), 100, 4)
    a3 = p.sample(np.random.default_rng(4), 100, 4)
    assert np.array_equal(a1, a2) and not np.array_equal(a1, a3)


@pytest.mark.parametrize("rate", [-0.1, 1.2, float("nan"), "x"])
def test_iid_rejects_bad_rate(rate):
    with pytest.raises(InvalidParameterError, match=r"\[0, 1\]"):
        IIDAcceptance(rate)


def test_schedule_per_position_law_and_length_errors():
    alphas = (0.9, 0.1, 0.5)
    proc = ScheduleAcceptance(alphas)
    x = proc.sample(np.random.default_rng(5), 3, 20000)
    se = np.sqrt(np.array(alphas) * (1 - np.array(alphas)) / 20000)
    assert np.all(np.abs(x.mean(axis=0) - alphas) < Z * se)
    with pytest.raises(InvalidParameterError, match="cycle=True"):
        proc.sample(np.random.default_rng(0), 4)
    assert ScheduleAcceptance(alphas, cycle=True).sample(np.random.default_rng(0), 7).shape == (1, 7)
    assert ScheduleAcceptance((0.3, 0.3)).iid_rate == 0.3 and proc.iid_rate is None
    with pytest.raises(InvalidParameterError, match="entry 1"):
        ScheduleAcceptance((0.5, 1.5))


def test_markov_from_mean_has_stationary_mean_and_burstiness():
    proc = MarkovAcceptance.from_mean(0.75, burstiness=0.9, alpha_easy=0.95, alpha_hard=0.3)
    assert proc.mean == pytest.approx(0.75) and proc.burstiness == pytest.approx(0.9)
    draw = proc.draw(np.random.default_rng(8), 400, 500)
    per_rep = draw.accepted.mean(axis=1)  # replications are independent: a valid standard error
    assert abs(per_rep.mean() - 0.75) < Z * per_rep.std(ddof=1) / np.sqrt(per_rep.size)
    easy = draw.signals["easy"].astype(float)
    # lag-one autocorrelation of the hidden state equals the burstiness parameter
    x0, x1 = easy[:, :-1].ravel(), easy[:, 1:].ravel()
    assert np.corrcoef(x0, x1)[0, 1] == pytest.approx(0.9, abs=0.01)


def test_markov_is_burstier_than_iid_at_the_same_mean():
    """Bursty acceptance has longer accepted runs' variance: the point of the process."""
    rng = np.random.default_rng(21)
    iid = IIDAcceptance(0.8).sample(rng, 5000, 20)
    mk = MarkovAcceptance.from_mean(0.8, 0.95).sample(rng, 5000, 20)

    def run_var(a):
        runs = np.diff(np.flatnonzero(~a.ravel()))
        return runs.var()

    assert run_var(mk) > 2 * run_var(iid)


def test_markov_errors_say_what_to_change():
    with pytest.raises(InvalidParameterError, match="between alpha_hard"):
        MarkovAcceptance.from_mean(0.99, 0.5, alpha_easy=0.9, alpha_hard=0.2)
    with pytest.raises(InvalidParameterError, match="burstiness must be < 1"):
        MarkovAcceptance.from_mean(0.5, 1.0)
    with pytest.raises(InvalidParameterError, match="never mixes"):
        MarkovAcceptance(0.9, 0.1, 0.0, 0.0)


def test_trace_from_run_lengths_and_replay():
    proc = TraceAcceptance.from_run_lengths([2, 0, 1])
    assert proc.traces == ((True, True, False, False, True, False),)
    assert proc.mean == pytest.approx(0.5)
    x = proc.sample(np.random.default_rng(0), 6, 3)
    assert (x == np.array(proc.traces[0])).all()
    with pytest.raises(InvalidParameterError, match="wrap=True"):
        proc.sample(np.random.default_rng(0), 7)
    wrapped = TraceAcceptance.from_run_lengths([1], wrap=True).sample(np.random.default_rng(0), 5)
    assert wrapped.tolist() == [[True, False, True, False, True]]


def test_trace_file_roundtrip_and_line_numbers(tmp_path):
    good = tmp_path / "t.txt"
    good.write_text("# recorded on a real pair\n1101\n\nruns: 3 0\n")
    proc = TraceAcceptance.from_file(good)
    assert proc.traces == ((True, True, False, True), (True, True, True, False, False))
    bad = tmp_path / "bad.txt"
    bad.write_text("1101\n11x1\n")
    with pytest.raises(TraceFormatError, match=r"bad.txt:2"):
        TraceAcceptance.from_file(bad)
    bad.write_text("runs: 3 -1\n")
    with pytest.raises(TraceFormatError, match=r":1: 'runs:'"):
        TraceAcceptance.from_file(bad)
    bad.write_text("# only a comment\n")
    with pytest.raises(TraceFormatError, match="no traces"):
        TraceAcceptance.from_file(bad)


@pytest.mark.parametrize("mean", [0.01, 0.1, 0.2, 0.4, 0.8, 0.9, 0.95, 0.97, 0.999])
def test_markov_from_mean_works_for_every_mean_in_0_1(mean):
    proc = MarkovAcceptance.from_mean(mean, burstiness=0.9)
    assert proc.alpha_hard < mean < proc.alpha_easy
    assert proc.mean == pytest.approx(mean) and proc.burstiness == pytest.approx(0.9)
    assert proc.iid_rate is None  # genuinely bursty


def test_markov_from_mean_keeps_095_and_02_in_the_middle():
    proc = MarkovAcceptance.from_mean(0.8, 0.9)
    assert (proc.alpha_easy, proc.alpha_hard) == (0.95, 0.2)
    assert (proc.p_easy_to_hard, proc.p_hard_to_easy) == pytest.approx((0.02, 0.08))
    for mean in (0.4, 0.6, 0.9):
        proc = MarkovAcceptance.from_mean(mean, 0.5)
        assert (proc.alpha_easy, proc.alpha_hard) == (0.95, 0.2)
    assert MarkovAcceptance.from_mean(0.1, 0.5).alpha_hard == 0.05
    assert MarkovAcceptance.from_mean(0.98, 0.5).alpha_easy == pytest.approx(0.99)


@pytest.mark.parametrize("mean", [0.0, 1.0])
def test_markov_from_mean_at_the_endpoints_is_deterministic(mean):
    proc = MarkovAcceptance.from_mean(mean, burstiness=0.9)
    assert proc.iid_rate == mean and proc.mean == mean
    assert (proc.sample(np.random.default_rng(0), 200, 3) == bool(mean)).all()


def test_markov_from_mean_explicit_states():
    proc = MarkovAcceptance.from_mean(0.97, 0.5, alpha_easy=0.99)
    assert (proc.alpha_easy, proc.alpha_hard) == (0.99, 0.2) and proc.mean == pytest.approx(0.97)
    assert MarkovAcceptance.from_mean(0.5, 0.5, alpha_easy=0.5, alpha_hard=0.5).iid_rate == 0.5
    with pytest.raises(InvalidParameterError, match="bracket the mean"):
        MarkovAcceptance.from_mean(0.5, 0.5, alpha_easy=0.6, alpha_hard=0.6)
