"""Serving engines' speculative-decoding metrics -> acceptance processes; PositionalAcceptance's law."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simspec import IIDAcceptance, PositionalAcceptance, theory
from simspec.engine_metrics import from_engine_metrics, read_engine_metrics
from simspec.errors import InvalidParameterError, TraceFormatError
from simspec.montecarlo.positions import epoch_lengths

DATA = Path(__file__).parent / "data" / "engine_metrics"


# -- PositionalAcceptance --------------------------------------------------------------------------

def _run_lengths(accepted):
    """Completed runs of accepted drafts (each closed by a rejection), pooled over rows."""
    rows, lengths = epoch_lengths(accepted)
    # an epoch ends at a rejection (its length counts it) except each row's last, open one
    last = np.r_[rows[1:] != rows[:-1], True]
    # a row's last epoch is closed only if the row's last position is a rejection
    ends_rejected = ~accepted[rows[last], -1]
    closed = np.concatenate([lengths[~last], lengths[last][ends_rejected]])
    return closed - 1


def test_positional_empirical_alphas_match_the_input():
    alphas = (0.9, 0.75, 0.6, 0.5)
    acc = PositionalAcceptance(alphas)
    d = acc.draw(np.random.default_rng(0), 400, reps=500)  # ~ 200,000 positions, ~ 80,000 runs
    runs = _run_lengths(d.accepted)
    for j in range(1, 7):
        reached = (runs >= j - 1).sum()
        alpha_hat = (runs >= j).sum() / reached
        want = alphas[min(j, 4) - 1]  # geometric tail with alpha_K beyond K
        assert abs(alpha_hat - want) < 4 * np.sqrt(want * (1 - want) / reached) + 1e-3, (j, alpha_hat, want)
    assert abs(d.accepted.mean() - acc.mean) < 0.005
    # the "alpha" signal is the alpha in force: position in the run, capped at K
    a = d.signals["alpha"]
    assert a[0, 0] == 0.9 and set(np.unique(a)) <= set(alphas)


def test_positional_with_equal_alphas_is_the_iid_law():
    pos = PositionalAcceptance((0.7, 0.7, 0.7))
    assert pos.iid_rate == 0.7 and pos.mean == pytest.approx(0.7)
    r_pos = _run_lengths(pos.sample(np.random.default_rng(1), 300, 400))
    r_iid = _run_lengths(IIDAcceptance(0.7).sample(np.random.default_rng(2), 300, 400))
    h_pos = np.bincount(r_pos, minlength=30)[:12] / r_pos.size
    h_iid = np.bincount(r_iid, minlength=30)[:12] / r_iid.size
    geometric = 0.3 * 0.7 ** np.arange(12)
    # run-length histograms agree with each other and with the geometric law (~ 36,000 runs each)
    assert np.abs(h_pos - h_iid).max() < 0.01
    assert np.abs(h_pos - geometric).max() < 0.01


def test_positional_survival_mean_and_edges():
    acc = PositionalAcceptance((0.5, 0.5, 0.2))
    np.testing.assert_allclose(acc.survival([0, 1, 2, 3, 4, 5]), [1, 0.5, 0.25, 0.05, 0.01, 0.002])
    assert acc.mean_run == pytest.approx(0.5 + 0.25 + 0.05 + 0.05 * 0.2 / 0.8)
    assert acc.mean == pytest.approx(acc.mean_run / (1 + acc.mean_run))
    assert PositionalAcceptance((1.0,)).sample(np.random.default_rng(0), 7, 2).all()
    assert not PositionalAcceptance((0.0,)).sample(np.random.default_rng(0), 7, 2).any()
    assert PositionalAcceptance((1.0, 0.0)).sample(np.random.default_rng(0), 6, 1).tolist() == [[1, 0, 1, 0, 1, 0]]
    with pytest.raises(InvalidParameterError):
        PositionalAcceptance(())
    with pytest.raises(InvalidParameterError, match="exceeds"):
        PositionalAcceptance.from_counts(10, [5, 6])
    assert PositionalAcceptance.from_counts(10, [5, 0, 0]).alphas == (0.5, 0.0)  # position 3 never reached


def test_fitted_rate_inverts_the_closed_form():
    a = np.array([0.0, 0.1, 0.5, 0.8, 0.95, 1.0])
    for k in (1, 3, 8):
        tau = theory.si_expected_tokens_per_iteration(a, k)
        np.testing.assert_allclose(theory.si_acceptance_rate_from_tokens(tau, k), a, atol=1e-12)
    with pytest.raises(InvalidParameterError, match=r"\[1, k \+ 1\]"):
        theory.si_acceptance_rate_from_tokens(4.5, 3)


# -- each engine's example file, by hand ---------------------------------------------------------------

def test_vllm_prometheus_counters():
    # drafts 250 + 150 = 400; accepted at positions 0, 1, 2: 320, 260, 200 (summed over the engine label)
    m = read_engine_metrics(DATA / "vllm_metrics.prom")
    assert (m.engine, m.drafts, m.draft_tokens, m.accepted_tokens) == ("vllm", 400.0, 1200.0, 780.0)
    acc = from_engine_metrics(DATA / "vllm_metrics.prom")
    assert isinstance(acc, PositionalAcceptance)
    assert acc.alphas == pytest.approx((320 / 400, 260 / 320, 200 / 260))


def test_vllm_per_request_json():
    # pooled histogram {0: 3, 1: 3, 2: 4, 3: 6} over 16 steps: reached position 1..3 in 13, 10, 6 steps
    acc = from_engine_metrics(DATA / "vllm_requests.jsonl", engine="vllm")
    assert acc.alphas == pytest.approx((13 / 16, 10 / 13, 6 / 10))
    one = from_engine_metrics('{"mean_acceptance_length": 2.5}', engine="vllm", k=3)
    assert one.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(2.5, 3))


def test_sglang_gauge_and_log():
    acc = from_engine_metrics(DATA / "sglang_metrics.prom", k=3)  # mean of 3.1 and 3.3
    assert acc.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(3.2, 3))
    assert theory.si_expected_tokens_per_iteration(acc.rate, 3) == pytest.approx(3.2)
    log = from_engine_metrics(DATA / "sglang_decode.log", k=3)  # mean of 2.5, 3.0, 3.5
    assert log.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(3.0, 3))
    with pytest.raises(InvalidParameterError, match="pass k="):
        from_engine_metrics(DATA / "sglang_decode.log")


def test_llamacpp_formats():
    # timings: 48 + 32 = 80 drafted, 30 + 22 = 52 accepted; k = 4 -> 20 rounds, 1 + 52/20 = 3.6 tokens per round
    acc = from_engine_metrics(DATA / "llamacpp_timings.jsonl", k=4)
    assert acc.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(3.6, 4))
    log = from_engine_metrics(DATA / "llamacpp_server.log", k=4)  # the same counts, from the log lines
    assert log.rate == acc.rate
    # llama-speculative: n_draft = 8 (k), n_drafted = 160 -> 20 rounds, n_accept = 100 -> 6 tokens per round
    spec = from_engine_metrics(DATA / "llamacpp_speculative.log")
    assert spec.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(6.0, 8))
    with pytest.raises(InvalidParameterError, match="pass k="):
        from_engine_metrics(DATA / "llamacpp_timings.jsonl")
    with pytest.raises(InvalidParameterError, match="k = 8 .* k = 4"):
        from_engine_metrics(DATA / "llamacpp_speculative.log", k=4)


def test_trtllm_iteration_stats():
    # iterations with drafts: 12 + 12 drafted, 7 + 9 accepted, 4 + 4 requests -> k = 3, 1 + 16/8 = 3 tokens per round
    m = read_engine_metrics(DATA / "trtllm_iteration_stats.json")
    assert (m.engine, m.drafts, m.draft_tokens, m.accepted_tokens) == ("trtllm", 8.0, 24.0, 16.0)
    assert m.extra["mean_draft_overhead"] == pytest.approx(0.215)
    acc = m.acceptance()
    assert acc.rate == pytest.approx(theory.si_acceptance_rate_from_tokens(3.0, 3))


@pytest.mark.parametrize("text, match", [
    ("vllm:spec_decode_num_draft_tokens_total 10\n", "no vllm:spec_decode_num_drafts counter"),
    ("vllm:spec_decode_num_drafts 10\nvllm:spec_decode_num_accepted_tokens_per_pos{position=\"1\"} 3\n",
     r"positions \[1\]; expected 0, 1"),
    ("vllm:spec_decode_num_drafts 10\nvllm:spec_decode_num_accepted_tokens_per_pos{position=\"0\"} 12\n",
     "inconsistent counters"),
    ("vllm:spec_decode_num_drafts{a=\"1\" 10\n", r"<text>:1:\d+: "),
    ("vllm:spec_decode_num_drafts x\n", r"<text>:1:\d+: value 'x'"),
    ('[{"specDecodingStats": {"numDraftTokens": 3}}]', "no 'numAcceptedTokens' field"),
    ("hello\nworld\n", "cannot tell which engine"),
    ("Decode batch. accept len: 0.50\n", r"<text>:1:\d+: accept len '0.50'"),
])
def test_engine_metric_errors_say_what_is_missing(text, match):
    with pytest.raises(TraceFormatError, match=match):
        from_engine_metrics(text, k=3)


def test_missing_file_and_unknown_engine():
    with pytest.raises(TraceFormatError, match="no such file"):
        from_engine_metrics(DATA / "nope.prom")
    with pytest.raises(InvalidParameterError, match="engine must be one of"):
        from_engine_metrics(DATA / "vllm_metrics.prom", engine="tgi")


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('vllm:spec_decode_num_drafts{}="0123456789 .\n#,position')),
                    max_size=120),
       engine=st.sampled_from(["auto", "vllm", "sglang", "llamacpp", "trtllm"]))
def test_fuzzed_metrics_are_named_errors(text, engine):
    try:
        from_engine_metrics(text + "\n", engine=engine, k=3)
    except (TraceFormatError, InvalidParameterError) as exc:
        assert str(exc)
        if "<text>:" in str(exc):
            assert re.search(r"<text>(:\d+:\d+)?: ", str(exc))
