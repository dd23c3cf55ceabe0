"""Measured latency profiles (simspec.profiles) and the loop overheads the engines charge."""

import io
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simspec import ConstantLatency, IIDAcceptance, MarkovAcceptance, Overheads, Scenario, StaticLookahead, compare
from simspec.des import run_once, simulate
from simspec.errors import InvalidParameterError, ProfileFormatError, TraceFormatError, UnsupportedScenarioError
from simspec.latency import LatencyModel, is_deterministic
from simspec.montecarlo.nonsi import nonsi_run
from simspec.montecarlo.si import si_run
from simspec.profiles import (
    ProfileLatency,
    ProfileRangeWarning,
    ProfileRow,
    builtin_profile,
    load_profile,
    profile_spec,
    read_profile_table,
    write_profile,
)

HEAD = "model,phase,width,context_len,median_ms"


def _write(tmp_path, text, name="p.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _profile(text, **kw):
    return load_profile(io.StringIO(text), **kw)


# -- the loader's errors: file, line and column -------------------------------------------------------

BAD = [
    (f"{HEAD}\nm,decode,1,0,abc\n", 2, 5, "median_ms must be a number"),
    (f"{HEAD}\nm,decode,1,0,-3\n", 2, 5, "must be a time in ms > 0"),
    (f"{HEAD}\nm,prefill,1,0,nan\n", 2, 5, "NaN"),
    (f"{HEAD}\nm,decoding,1,0,3\n", 2, 2, "unknown phase 'decoding'"),
    ("model,phase,width,median_ms\nm,decode,1,3\n", 1, 5, "missing required column 'context_len'"),
    (f"{HEAD},medain\nm,decode,1,0,3,x\n", 1, 6, "unknown column 'medain'"),
    (f"{HEAD}\nm,decode,0,0,3\n", 2, 3, "width must be an integer >= 1"),
    (f"# provenance\n{HEAD}\nm,decode,1,0,3\nm,decode,1,0,4\n", 4, 3, "duplicate cell"),
    (f"{HEAD}\nm,decode,1,0\n", 2, 5, "a cell for column 'median_ms' is missing"),
    (f"{HEAD}\nm,decode,1,0,3,4\n", 2, 6, "more cells"),
    (f"{HEAD}\nm,overhead_per_round,1,,0.5\n", 2, 3, "has no width"),
    (f"{HEAD},p25_ms\nm,decode,1,0,3,2\n", 2, 6, "go together"),
    (f"{HEAD},p25_ms,p75_ms\nm,decode,1,0,3,3.5,4\n", 2, 6, "bracket the median"),
    (f"{HEAD}\nm,decode,1,0,3\nm,decode,2,0,3\nm,decode,1,128,4\n", 3, 1, "no cell at width 2, context_len 128"),
    ("# only a comment\n\n", 2, 1, "empty profile"),
    (f"{HEAD}\n", 1, 1, "no rows after the header"),
    (b"model,phase,width,context_len,median_ms\nm,decode,1,0,3\xff\n", 2, 15, "not UTF-8"),
    (f"{HEAD}\nm,decode,1,-1,3\n", 2, 4, "context_len must be an integer >= 0"),
    (f"{HEAD},model\n", 1, 6, "appears twice"),
]


@pytest.mark.parametrize("text, line, col, what", BAD)
def test_loader_errors_name_file_line_and_column(tmp_path, text, line, col, what):
    path = _write(tmp_path, text)
    with pytest.raises(ProfileFormatError) as exc:
        read_profile_table(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}:{col}: "), msg
    assert what in msg
    assert isinstance(exc.value, TraceFormatError)


def test_model_choice_lists_the_models(tmp_path):
    path = _write(tmp_path, f"{HEAD}\na,decode,1,0,3\nb,decode,1,0,4\n")
    with pytest.raises(InvalidParameterError, match=r"2 models \(a, b\).*FILE:MODEL"):
        load_profile(path)
    with pytest.raises(InvalidParameterError, match="no model 'c'.*its models: a, b"):
        load_profile(path, "c")
    assert load_profile(path, "b").tpot_ms == 4.0
    only_prefill = _write(tmp_path, f"{HEAD}\na,prefill,8,0,3\n", "q.csv")
    with pytest.raises(InvalidParameterError, match="no decode rows"):
        load_profile(only_prefill)


_FRAGMENTS = st.sampled_from([
    HEAD, "model", "phase", "width", "context_len", "median_ms", "p25_ms", "p75_ms", "batch", "n", ",", "\n", "\r\n",
    "#", "m", "decode", "prefill", "overhead_per_round", "1", "0", "-1", "2.5", "nan", "inf", "1e400", '"', " ",
    "\x00", "\ufeff", "é", "99999999999999", "",
])


@given(st.one_of(st.binary(max_size=300), st.lists(_FRAGMENTS, max_size=40).map("".join)))
def test_fuzzed_profiles_raise_only_the_named_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "p.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    try:
        rows = read_profile_table(path)
    except ProfileFormatError as exc:
        assert str(exc).startswith(f"{path}:")
        return
    for model in {r.model for r in rows if r.batch == 1 and r.phase == "decode"}:
        p = load_profile(path, model)
        assert np.isfinite(p.tpot_ms) and p.tpot_ms > 0


def test_write_then_read_round_trips(tmp_path):
    rows = [ProfileRow("m", "decode", w, c, 20.0 + w * 0.1 + c * 1e-3, 19.0 + w * 0.1, 22.0 + w * 0.1 + c * 1e-3,
                       n=30, device="A100", threads=8)
            for w in (1, 2, 4) for c in (0, 512)]
    rows.append(ProfileRow("m", "overhead_per_round", None, None, 0.35))
    path = write_profile(tmp_path / "out.csv", rows, {"source": "a test\nwith two lines", "date": "2025-01-01"})
    text = path.read_text()
    assert text.startswith("# source: a test with two lines\n# date: 2025-01-01\nmodel,phase,width,context_len,")
    assert read_profile_table(path) == rows
    with pytest.raises(ProfileFormatError, match="bracket the median"):
        write_profile(tmp_path / "bad.csv", [ProfileRow("m", "decode", 1, 0, 5.0, 6.0, 7.0)])
    assert not (tmp_path / "bad.csv").exists()


# -- interpolation ------------------------------------------------------------------------------------


def test_between_two_widths_is_the_linear_interpolation_and_not_forced_monotone():
    p = _profile(f"{HEAD}\nm,decode,1,0,20\nm,decode,4,0,26\nm,decode,8,0,24\n")
    assert p.forward(2) == 20 + (26 - 20) * (2 - 1) / (4 - 1)
    assert p.forward(6) == 26 + (24 - 26) * (6 - 4) / (8 - 4)
    got = p.forward(np.arange(1, 9))
    assert got.tolist() == [p.forward(int(n)) for n in range(1, 9)]  # vector and scalar paths: the same floats
    assert got[3] == 26.0 and got[7] == 24.0 and got[7] < got[3]  # the measured dip stays
    assert isinstance(p, LatencyModel) and is_deterministic(p) and not p.context_dependent
    assert p.tpot_ms == 20.0 and p.ttft_ms == 0.0


def test_bilinear_over_width_and_context():
    p = _profile(f"{HEAD}\nm,decode,1,0,10\nm,decode,3,0,14\nm,decode,1,100,20\nm,decode,3,100,30\n")
    assert p.context_dependent
    lo, hi = 10 + 0.5 * (14 - 10), 20 + 0.5 * (30 - 20)
    assert p.forward(2, 25) == lo + 0.25 * (hi - lo)
    assert p.forward(np.array([2, 2]), 25).tolist() == [p.forward(2, 25)] * 2
    assert p.tpot_ms == 10.0  # width 1 at the smallest context


def test_outside_the_range_the_nearest_value_and_exactly_one_warning_per_side():
    p = _profile(f"{HEAD}\nm,decode,2,0,20\nm,decode,8,0,32\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert p.forward(12) == 32.0 and p.forward(40) == 32.0 and p.forward([9, 50]).tolist() == [32.0, 32.0]
    assert len(caught) == 1 and caught[0].category is ProfileRangeWarning
    assert "decode width 12 is above the measured range 2..8" in str(caught[0].message)
    with pytest.warns(ProfileRangeWarning, match="width 1 is below"):
        assert p.forward(1) == 20.0
    assert p.tpot_ms == 20.0  # the smallest measured width, no warning from the property
    one_width = _profile(f"{HEAD}\nm,decode,1,0,20\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one measured width: constant in width, no warning
        assert one_width.forward(50) == 20.0


def test_prefill_interpolates_over_the_prompt_and_ttft_is_the_smallest_width():
    p = _profile(f"{HEAD}\nm,decode,1,0,20\nm,prefill,128,0,40\nm,prefill,512,0,100\n")
    assert p.ttft_ms == 40.0
    assert p.forward(256, 0, "prefill") == 40 + (100 - 40) * (256 - 128) / (512 - 128)
    assert p.forward(0, 0, "prefill") == 40.0  # prompt length unknown
    s = Scenario(p, ConstantLatency(2.0), IIDAcceptance(0.5), lookahead=1, tokens=5, prompt_len=256)
    assert run_once(s, "nonsi", np.ones(5, bool)).ttft_ms == p.forward(256, 0, "prefill")


def test_quartile_replay_statistics_with_a_fixed_seed():
    m, p25 = 20.0, 18.0
    p75 = m * m / p25  # log-symmetric quartiles: the log-normal matches median and both quartiles
    p = _profile(f"{HEAD},p25_ms,p75_ms\nm,decode,1,0,{m},{p25},{p75}\nm,decode,5,0,30,,\n", stochastic=True)
    assert not p.deterministic and isinstance(p, LatencyModel)
    rng = np.random.default_rng(7)
    x = np.array([p.sample(rng, 1) for _ in range(20000)])
    q25, q50, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    assert q50 == pytest.approx(m, rel=0.01) and q25 == pytest.approx(p25, rel=0.01) and q75 == pytest.approx(p75, rel=0.01)
    sigma = np.log(p75 / p25) / (2 * 0.6744897501960817)
    assert p.forward(1) == pytest.approx(m * np.exp(sigma**2 / 2), rel=1e-12)  # forward: the mean
    assert p.sample(rng, 5) == 30.0  # a cell without quartiles is constant
    # halfway between the cells: median and σ interpolated linearly
    y = p.sample(np.random.default_rng(3), np.full(20000, 3))
    assert np.median(y) == pytest.approx(25.0, rel=0.01)
    assert np.log(np.quantile(y, 0.75) / np.quantile(y, 0.25)) / (2 * 0.6744897501960817) == pytest.approx(sigma / 2, rel=0.05)
    det = _profile(f"{HEAD},p25_ms,p75_ms\nm,decode,1,0,{m},{p25},{p75}\n")
    assert det.deterministic and det.sample(rng, 1) == m and det.stochastic().sample(np.random.default_rng(0)) != m


# -- built-in profiles --------------------------------------------------------------------------------

PUBLISHED = {"vicuna-13b@cnn-dm": 37.7, "vicuna-13b@alpaca": 33.3, "vicuna-7b@cnn-dm": 29.4,
             "vicuna-7b@alpaca": 26.0, "vicuna-68m": 2.5, "starcoder-15b@humaneval": 20.6,
             "starcoder-15b@mbpp": 21.0, "starcoder-168m": 6.8, "phi3-14b@humaneval": 52.1, "phi3-14b@mbpp": 52.2,
             "phi3-14b@cnn-dm": 52.4, "phi3-14b@alpaca": 49.6, "phi3-4b@humaneval": 34.0, "phi3-4b@mbpp": 34.3,
             "phi3-4b@cnn-dm": 34.6, "phi3-4b@alpaca": 33.4}


def test_builtin_dsi_profiles_hold_the_published_numbers():
    rows = read_profile_table("builtin:dsi-paper-a100")
    assert {r.model: r.median_ms for r in rows} == PUBLISHED
    assert all(r.phase == "decode" and r.width == 1 and r.context_len == 0 for r in rows)
    for model, tpot in PUBLISHED.items():
        p = load_profile("builtin:dsi-paper-a100", model=model)
        assert p.tpot_ms == tpot and p.forward(11) == tpot and p.ttft_ms == 0.0 and p.overheads.zero
    assert builtin_profile("dsi-paper-a100", "vicuna-68m").tpot_ms == 2.5
    with pytest.raises(InvalidParameterError, match="no built-in profile 'nope'"):
        load_profile("builtin:nope")


def test_profile_spec():
    assert profile_spec("builtin:dsi-paper-a100") == ("builtin:dsi-paper-a100", None)
    assert profile_spec("builtin:dsi-paper-a100:vicuna-68m") == ("builtin:dsi-paper-a100", "vicuna-68m")
    assert profile_spec("a/b.csv:target") == ("a/b.csv", "target")
    assert profile_spec("a/b.csv") == ("a/b.csv", None)


# -- a profile constant in width is ConstantLatency, bit for bit -----------------------------------------


@pytest.mark.parametrize("widths", [(1,), (1, 2, 3, 4, 6, 9)])
def test_constant_profile_reproduces_constant_latency_exactly(widths):
    body = "".join(f"t,decode,{w},0,30.0\n" for w in widths) + "".join(f"d,decode,{w},0,3.7\n" for w in widths)
    text = f"{HEAD}\n{body}"
    tp, dp = _profile(text, model="t"), _profile(text, model="d")
    acc = MarkovAcceptance.from_mean(0.7, 0.6)
    kw = dict(lookahead=5, tokens=120, servers=None)
    const = Scenario(ConstantLatency(30.0), ConstantLatency(3.7), acc, **kw)
    prof = Scenario.from_profiles(tp, dp, acc, **kw)
    a, b = compare(const, "montecarlo", replications=20, rng=3), compare(prof, "montecarlo", replications=20, rng=3)
    for name in ("nonsi", "si", "dsi"):
        ra, rb = getattr(a, name), getattr(b, name)
        assert np.array_equal(ra.per_run_latency_ms, rb.per_run_latency_ms), name
        assert ra.gpu_seconds.mean == rb.gpu_seconds.mean and ra.drafter_forwards.mean == rb.drafter_forwards.mean
    for algorithm in ("nonsi", "si", "dsi"):
        x, y = simulate(const, algorithm, replications=3, rng=5), simulate(prof, algorithm, replications=3, rng=5)
        assert [r.to_dict() for r in x.runs] == [r.to_dict() for r in y.runs], algorithm
    if len(widths) == 1:  # "best" too (k up to k_max = 200: no range warning with one width)
        best_a = compare(const.replace(lookahead="best", acceptance=IIDAcceptance(0.7)), "theory")
        best_b = compare(prof.replace(lookahead="best", acceptance=IIDAcceptance(0.7)), "theory")
        assert best_a.si.lookahead == best_b.si.lookahead and best_a.dsi.latency_ms.mean == best_b.dsi.latency_ms.mean


def test_context_dependent_profile_runs_in_the_des_only():
    text = f"{HEAD}\nt,decode,1,0,30\nt,decode,1,1000,40\nt,decode,4,0,33\nt,decode,4,1000,45\n"
    p = _profile(text)
    s = Scenario(p, ConstantLatency(3.0), IIDAcceptance(0.8), lookahead=3, tokens=200)
    with pytest.raises(UnsupportedScenarioError, match="depends on context length.*discrete-event"):
        compare(s, "montecarlo")
    flat = Scenario(_profile(f"{HEAD}\nt,decode,1,0,30\nt,decode,4,0,33\n"), ConstantLatency(3.0), IIDAcceptance(0.8),
                    lookahead=3, tokens=200)
    slow, fast = simulate(s, "si", replications=2, rng=1), simulate(flat, "si", replications=2, rng=1)
    assert slow.latency_ms.mean > fast.latency_ms.mean  # longer contexts cost more
    non = run_once(s, "nonsi", np.ones(200, bool))
    assert non.decode_ms == pytest.approx(sum(p.forward(1, j) for j in range(200)))


# -- loop overheads -----------------------------------------------------------------------------------

LOOP = Overheads(per_round_ms=0.5, per_draft_token_ms=0.25, per_drafter_forward_ms=0.125, per_emitted_token_ms=0.1)


def test_profile_overheads_go_to_the_deployment_once():
    text = (f"{HEAD}\nt,decode,1,0,30\nt,overhead_per_round,,,0.5\nt,overhead_per_emitted_token,,,0.1\n"
            "d,decode,1,0,3\nd,overhead_per_draft_token,,,0.25\nd,overhead_per_drafter_forward,,,0.125\n"
            "d,overhead_per_emitted_token,,,0.25\n")
    tp, dp = _profile(text, model="t"), _profile(text, model="d")
    assert tp.overheads == Overheads(per_round_ms=0.5, per_emitted_token_ms=0.1)
    s = Scenario.from_profiles(tp, dp, 0.8, overheads=Overheads(message_ms=1.0))
    assert s.deployment.overheads == Overheads(message_ms=1.0, per_round_ms=0.5, per_draft_token_ms=0.25,
                                               per_drafter_forward_ms=0.125, per_emitted_token_ms=0.35)
    assert s.replace(tokens=10).deployment.overheads == s.deployment.overheads  # replace does not add them again
    assert Scenario(tp, dp, IIDAcceptance(0.8)).deployment.overheads.zero  # only from_profiles reads them
    assert s.describe()["per_emitted_token_ms"] == 0.35


@pytest.mark.parametrize("k", [1, 3, 8])
def test_montecarlo_and_des_si_agree_run_by_run_with_loop_overheads(k):
    S = 60
    s = Scenario.from_ms(30.0, 3.0, 0.7, lookahead=k, tokens=S, overheads=LOOP)
    A = np.random.default_rng(k).random((4, S)) < 0.7
    mc = si_run(A, StaticLookahead(k), s.target, s.drafter, overheads=LOOP)
    plain = si_run(A, StaticLookahead(k), s.target, s.drafter)
    for i in range(A.shape[0]):
        des = run_once(s, "si", A[i])
        assert des.decode_ms == pytest.approx(mc["decode_ms"][i], rel=1e-12)
        assert des.drafter_busy_ms == pytest.approx(mc["drafter_busy_ms"][i], rel=1e-12)  # overheads are not busy
        rounds, drafts = mc["rounds"][i], mc["drafter_forwards"][i]
        assert mc["decode_ms"][i] == pytest.approx(plain["decode_ms"][i] + rounds * 0.5 + drafts * 0.375 + S * 0.1,
                                                   rel=1e-12)
    nonsi = nonsi_run(s.target, S, 2, overheads=LOOP)["decode_ms"]
    assert nonsi.tolist() == [S * 30.0 + S * 0.1] * 2
    assert run_once(s, "nonsi", A[0]).decode_ms == pytest.approx(nonsi[0], rel=1e-12)


def test_dynamic_policy_si_charges_the_same_rule():
    from simspec import HeuristicLookahead

    S = 50
    s = Scenario.from_ms(30.0, 3.0, 0.7, lookahead=HeuristicLookahead(), tokens=S, overheads=LOOP)
    A = np.random.default_rng(0).random((3, S)) < 0.7
    mc = si_run(A, HeuristicLookahead(), s.target, s.drafter, overheads=LOOP)
    for i in range(3):
        assert run_once(s, "si", A[i]).decode_ms == pytest.approx(mc["decode_ms"][i], rel=1e-12)


def test_dsi_charges_loop_overheads_by_the_documented_rule():
    """S = 3, k = 2, t = 10, d = 1, every draft accepted, unlimited servers, the chain on.

    Drafter: each draft 1 + 0.25 → block 0 (positions 0, 1) ends at 2.5; task 1 (positions 0..2) verifies
    2.5..12.5.  Chain: position 0 in 0..10, its token takes effect at 10.1 (V = 1).  Task 1 reaches the
    coordinator at 12.5 and covers 3 − max(0, V = 1) = 2 new positions: it takes effect 0.5 + 2·0.1 = 0.7
    later, at 13.2, and ends the run.  The drafter's second block (2.5..5.0) counts 2 forwards, 2 ms busy.
    """
    ov = Overheads(per_round_ms=0.5, per_draft_token_ms=0.25, per_emitted_token_ms=0.1)
    s = Scenario.from_ms(10.0, 1.0, 1.0, lookahead=2, tokens=3, overheads=ov)
    run = run_once(s, "dsi", np.ones(3, bool))
    assert run.decode_ms == pytest.approx(13.2, abs=1e-12)
    assert (run.drafter_forwards, run.drafter_busy_ms, run.target_forwards) == (4, pytest.approx(4.0), 4)
    assert run_once(s.replace(overheads=Overheads()), "dsi", np.ones(3, bool)).decode_ms == 12.0
    si = run_once(s, "si", np.ones(3, bool))  # 2·1.25 drafting, 10 verifying, 0.5 + 3·0.1 after the round
    assert si.decode_ms == pytest.approx(13.3, abs=1e-12)


def test_dsi_with_loop_overheads_keeps_its_invariants():
    s = Scenario.from_ms(20.0, 2.0, 0.75, lookahead=3, tokens=300, overheads=LOOP)
    res = simulate(s, "dsi", replications=4, rng=2, trace=True)
    conf = [e["positions"] for e in res.events if e["event"] == "confirm"]
    assert [p for lo, hi in conf for p in range(lo, hi + 1)] == list(range(300))
    non = simulate(s, "nonsi", replications=4, rng=2)
    assert all(d.decode_ms <= n.decode_ms * (1 + 1e-12) for d, n in zip(res.runs, non.runs))
    with pytest.raises(UnsupportedScenarioError, match=r"overheads \(per_round_ms, .*\).*discrete-event engine"):
        compare(s, "montecarlo")


def test_stochastic_profile_runs_in_the_des():
    p = _profile(f"{HEAD},p25_ms,p75_ms\nt,decode,1,0,30,28,32\nt,decode,8,0,36,33,39\n", stochastic=True)
    s = Scenario(p, ConstantLatency(3.0), IIDAcceptance(0.8), lookahead=4, tokens=100)
    a, b = simulate(s, "si", replications=3, rng=4), simulate(s, "si", replications=3, rng=4)
    assert [r.latency_ms for r in a.runs] == [r.latency_ms for r in b.runs]
    with pytest.raises(UnsupportedScenarioError, match="stochastic"):
        compare(s, "montecarlo")
    assert repr(p).startswith("ProfileLatency('t', decode 2 widths x 1 context") and "stochastic" in repr(p)
    assert isinstance(p, ProfileLatency)


# -- the command line ---------------------------------------------------------------------------------


def _cli(capsys, argv):
    from simspec.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_profiles_replace_the_ms_flags(capsys):
    import json

    tail = ["--acceptance", "0.63", "--method", "montecarlo", "--reps", "20", "--tokens", "80", "--json"]
    code, by_ms, _ = _cli(capsys, ["compare", "--target-ms", "37.7", "--drafter-ms", "2.5"] + tail)
    assert code == 0
    code, by_profile, _ = _cli(capsys, ["compare", "--target-profile", "builtin:dsi-paper-a100:vicuna-13b@cnn-dm",
                                        "--drafter-profile", "builtin:dsi-paper-a100:vicuna-68m"] + tail)
    assert code == 0
    a, b = json.loads(by_ms), json.loads(by_profile)
    for name in ("nonsi", "si", "dsi"):
        assert a[name] == b[name]
    assert a["speedup"] == b["speedup"]


def test_cli_profile_errors_and_the_way_to_simulate(capsys, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(f"{HEAD}\nt,decode,1,0,30\nt,decode,8,0,33\nt,overhead_per_round,,,0.4\nd,decode,1,0,3\n")
    both = ["compare", "--target-ms", "30", "--target-profile", f"{path}:t", "--drafter-ms", "3", "--acceptance", "0.8"]
    with pytest.raises(SystemExit) as exc:
        _cli(capsys, both)
    assert exc.value.code == 2 and "not allowed with argument --target-ms" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli(capsys, ["compare", "--drafter-ms", "3", "--acceptance", "0.8"])
    assert "one of the arguments --target-ms --target-profile is required" in capsys.readouterr().err
    pair = ["--target-profile", f"{path}:t", "--drafter-profile", f"{path}:d", "--acceptance", "0.8"]
    code, _, err = _cli(capsys, ["compare"] + pair)
    assert code == 2 and "per_round_ms" in err and "simspec simulate" in err
    code, _, err = _cli(capsys, ["plan"] + pair)
    assert code == 2 and "simspec simulate" in err
    code, out, _ = _cli(capsys, ["simulate", "--algorithm", "si", "--lookahead", "3", "--tokens", "60",
                                 "--replications", "2", "--json"] + pair)
    assert code == 0 and json_load(out)["options"]["per_round_ms"] == 0.4
    code, _, err = _cli(capsys, ["compare", "--target-profile", str(path), "--drafter-ms", "3", "--acceptance", "0.8"])
    assert code == 2 and "2 models (t, d)" in err
    code, _, err = _cli(capsys, ["compare", "--target-profile", f"{path}:t", "--verify-ms-per-token", "1",
                                 "--drafter-ms", "3", "--acceptance", "0.8"])
    assert code == 2 and "drop --verify-ms-per-token" in err
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEAD}\nt,decode,1,0,-30\n")
    code, _, err = _cli(capsys, ["compare", "--target-profile", str(bad), "--drafter-ms", "3", "--acceptance", "0.8"])
    assert code == 2 and f"{bad}:2:5:" in err


def json_load(text):
    import json

    return json.loads(text)


def test_a_multi_width_target_caps_the_searched_lookaheads(tmp_path):
    from simspec import Scenario, compare
    from simspec.profiles import write_profile

    p = tmp_path / "p.csv"
    rows = [dict(model="t", phase="decode", width=w, context_len=0, median_ms=ms)
            for w, ms in [(1, 105.0), (2, 100.0), (3, 280.0), (4, 171.0)]]  # not monotone: width 2 is fastest
    rows.append(dict(model="d", phase="decode", width=1, context_len=0, median_ms=20.0))
    write_profile(p, rows)
    s = Scenario.from_profiles(load_profile(p, "t"), load_profile(p, "d"), 0.7, lookahead="best", tokens=64)
    assert s.k_max == 3  # verification of k + 1 tokens measured up to width 4
    c = compare(s, "theory")  # a verification cheaper than a decode (negative slope) is priced, not refused
    assert c.si.lookahead == 1 and c.dsi.lookahead == 1


def test_the_shipped_cpu_profiles_of_the_real_pair():
    """Measured on this project's CPU: Gemma-3-270M verifies 4 tokens faster than 3 (not monotone), SmolLM2 costs ~0.6."""
    from simspec.profiles import builtin_profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProfileRangeWarning)
        gemma = builtin_profile("cpu-real-pair", "gemma3-270m")
        smol = builtin_profile("cpu-real-pair", "smollm2-135m")
        w = gemma.forward(np.array([1, 2, 3, 4]), 128)
    assert w[3] < w[2] and w[1] > w[0]  # width 4 is cheaper than width 3: the kernels change with the shape
    assert gemma.max_width == smol.max_width == 16
    assert 0.4 < smol.tpot_ms / gemma.tpot_ms < 0.8
    assert gemma.context_dependent
