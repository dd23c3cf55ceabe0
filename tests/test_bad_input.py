"""Bad input gets a named simspec exception (or exit status 2 on the command line) whose message says what
to change, before any work starts: overflow, work that cannot finish, raw tracebacks, silent nonsense.

Each test pins one report of issue 7; the test name says which.
"""

import json
import math
import time

import numpy as np
import pytest

import simspec
from simspec import (
    ConstantLatency,
    IIDAcceptance,
    InvalidParameterError,
    MarkovAcceptance,
    ResourceLimitError,
    Scenario,
    ScheduleAcceptance,
    SimspecError,
    StochasticLatency,
    TraceAcceptance,
    TraceFormatError,
    compare,
    theory,
)
from simspec import _checks
from simspec.cli import main
from simspec.des import run_once, simulate
from simspec.sampling import std

BASE = ["--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8"]


def cli(capsys, argv):
    """Exit code and stderr of ``simspec argv``; every failure here must be one line, status 2."""
    t0 = time.perf_counter()
    code = main(argv)
    out, err = capsys.readouterr()
    assert time.perf_counter() - t0 < 20, "bad input must be refused before the work starts"
    return code, out, err


def refused(capsys, argv, *words):
    code, out, err = cli(capsys, argv)
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    return err


# -- the new exception ---------------------------------------------------------------------------------


def test_resource_limit_error_is_public_and_a_value_error():
    assert issubclass(ResourceLimitError, SimspecError) and issubclass(ResourceLimitError, ValueError)
    assert "ResourceLimitError" in simspec.__all__
    assert "ResourceLimitError" in simspec.API_SECTIONS["Exceptions"]


def test_check_work_names_the_argument_the_estimate_and_a_value_that_works():
    _checks.check_work("x", 10, 10, "lower x")  # at the limit: fine
    with pytest.raises(ResourceLimitError, match=r"--reps × --tokens is 2 GiB, more than the limit of 1 GiB.*lower --reps"):
        _checks.check_work("--reps × --tokens", 2 * 2**30, 2**30, "lower --reps to 10", unit="bytes")
    with pytest.raises(ResourceLimitError):
        _checks.check_work("x", math.nan, 10, "lower x")


# -- overflow ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_cli_tiny_drafter_latency_is_refused_not_a_negative_server_count(capsys, extra):
    # was: exit 0 and "target servers -9223372036854775807"; with --json a raw ValueError (NaN in JSON)
    argv = ["compare", "--target-ms", "30", "--drafter-ms", "1e-300", "--acceptance", "0.8"] + extra
    refused(capsys, argv, "--drafter-ms", "target servers", "at least")


@pytest.mark.parametrize("latencies", [["1e308", "3"], ["1e308", "1e307"], ["1e290", "1e289"], ["30", "3", "1e290"]])
@pytest.mark.parametrize("method", ["theory", "montecarlo"])
def test_cli_huge_latencies_are_refused(capsys, latencies, method):
    # was: exit 0 with inf in the table, or a raw ValueError from --json (inf, or a variance that overflowed)
    argv = ["compare", "--target-ms", latencies[0], "--drafter-ms", latencies[1], "--acceptance", "0.8", "--json",
            "--method", method, "--reps", "5", "--tokens", "200"]
    if len(latencies) == 3:
        argv += ["--verify-ms-per-token", latencies[2]]
    refused(capsys, argv, "--target-ms", "--drafter-ms", "ms per forward")


def test_cli_json_stays_valid_at_the_edge_of_the_checks(capsys):
    # c just above the smallest the check allows, and large but finite latencies: valid JSON, finite numbers
    for argv in (["compare", "--target-ms", "30", "--drafter-ms", "1e-9", "--acceptance", "0.8", "--json"],
                 ["compare", "--target-ms", "1e100", "--drafter-ms", "1e99", "--acceptance", "0.8", "--json",
                  "--method", "montecarlo", "--reps", "5", "--tokens", "200"]):
        code, out, err = cli(capsys, argv)
        assert code == 0, err
        obj = json.loads(out)
        assert obj["dsi"]["target_servers"] >= 1
        assert math.isfinite(obj["dsi"]["latency_ms"])


def test_dsi_servers_needed_refuses_counts_past_int64():
    with pytest.raises(InvalidParameterError, match="larger c"):
        theory.dsi_servers_needed(1e-300, 1)
    with pytest.raises(InvalidParameterError, match="larger c"):
        theory.dsi_servers_needed([0.1, 1e-300], [1, 2])
    assert int(theory.dsi_servers_needed(0.1, 5)) == 3  # ceil(1/(5·0.1)) + the chain
    assert theory.dsi_servers_needed(1e-12, 1) > 0


_SLOPE_FUNCTIONS = {
    "si_latency_per_token": lambda s: theory.si_latency_per_token(0.8, 0.1, 5, slope=s),
    "si_speedup": lambda s: theory.si_speedup(0.8, 0.1, 5, slope=s),
    "best_si_lookahead": lambda s: theory.best_si_lookahead(0.8, 0.1, k_max=10, slope=s),
    "oracle_latency_per_token": lambda s: theory.oracle_latency_per_token(0.8, 0.1, slope=s),
    "dsi_epoch_duration": lambda s: theory.dsi_epoch_duration(3, 2, 0.1, slope=s),
    "dsi_latency_per_token": lambda s: theory.dsi_latency_per_token(0.8, 0.1, 2, slope=s),
    "dsi_servers_needed": lambda s: theory.dsi_servers_needed(0.1, 2, slope=s),
}


@pytest.mark.parametrize("name", sorted(_SLOPE_FUNCTIONS))
@pytest.mark.parametrize("slope", [-1.0, math.nan, math.inf, [0.0, -0.5]])
def test_every_theory_function_taking_slope_validates_it(name, slope):
    # was: si_latency_per_token(0.8, 0.1, 5, slope=-1) returned a negative latency
    if name in ("dsi_latency_per_token", "dsi_epoch_duration", "oracle_latency_per_token") and isinstance(slope, list):
        slope = slope[1]
    with pytest.raises(InvalidParameterError, match="slope"):
        _SLOPE_FUNCTIONS[name](slope)
    assert np.all(np.asarray(_SLOPE_FUNCTIONS[name](0.05), dtype=float) > 0)


def test_theory_refuses_infinite_c():
    with pytest.raises(InvalidParameterError, match="finite"):
        theory.si_latency_per_token(0.8, math.inf, 5)


# -- work that cannot finish ---------------------------------------------------------------------------


def test_cli_k_max_too_large_is_refused(capsys):
    refused(capsys, ["compare", *BASE, "--k-max", "10000000"], "--k-max", "10000")


def test_best_si_lookahead_k_max_limits():
    with pytest.raises(InvalidParameterError, match="k_max"):
        theory.best_si_lookahead(0.8, 0.1, k_max=0)
    with pytest.raises(ResourceLimitError, match="k_max"):
        theory.best_si_lookahead(0.8, 0.1, k_max=10**7)
    k, _ = theory.best_si_lookahead(0.8, 0.1, k_max=_checks.MAX_LOOKAHEAD)  # the limit itself is usable
    assert int(k) == 6


@pytest.mark.parametrize("argv, flag", [
    (["simulate", "--algorithm", "si", *BASE, "--tokens", "1000000000"], "--tokens"),
    (["compare", "--method", "montecarlo", *BASE, "--tokens", "1000000000"], "--tokens"),
    (["compare", "--method", "montecarlo", *BASE, "--reps", "100000000"], "--replications"),
    (["simulate", "--algorithm", "dsi", *BASE, "--replications", "100000000"], "--replications"),
    (["compare", *BASE, "--lookahead", "1000000000"], "--lookahead"),
    (["simulate", "--algorithm", "si", *BASE, "--lookahead", "1000000000"], "--lookahead"),
    (["demo", "--reps", "100000000"], "--replications"),
])
def test_cli_work_that_cannot_finish_is_refused_up_front(capsys, argv, flag):
    # was: a raw MemoryError (7.45 GiB, 1.46 TiB asked for up front) or hours of running
    refused(capsys, argv, flag, "at most")


def test_cli_generous_limits_still_allow_real_use(capsys):
    # a few million tokens of theory, 10^4 lookahead candidates: accepted (theory is instant)
    code, _, err = cli(capsys, ["compare", *BASE, "--tokens", "5000000", "--json"])
    assert code == 0, err


def test_acceptance_draws_refuse_memory_they_cannot_have():
    rng = np.random.default_rng(0)
    for proc in (IIDAcceptance(0.8), MarkovAcceptance.from_mean(0.8, 0.5), ScheduleAcceptance((0.5,), cycle=True),
                 TraceAcceptance.from_arrays([[1, 0, 1]], wrap=True)):
        with pytest.raises(ResourceLimitError, match="reps × n_positions"):
            proc.draw(rng, 10**9, 200)
    assert IIDAcceptance(0.8).draw(rng, 1000, 200).accepted.shape == (200, 1000)


def test_des_tokens_and_replications_are_bounded():
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=10**9)
    with pytest.raises(ResourceLimitError, match="tokens"):
        simulate(s, "si", replications=1)
    with pytest.raises(ResourceLimitError, match="replications"):
        simulate(s.replace(tokens=1000), "dsi", replications=10**6)


def test_check_montecarlo_work_names_a_value_that_works():
    with pytest.raises(ResourceLimitError, match="lower replications to at most 1000000"):
        _checks.check_montecarlo_work(10**8, 1000, ("replications", "tokens"))
    _checks.check_montecarlo_work(200, 5_000_000)  # the default replications at a few million tokens


# -- raw tracebacks ------------------------------------------------------------------------------------


def test_binary_trace_file_is_a_trace_format_error_naming_file_and_line(tmp_path, capsys):
    path = tmp_path / "trace.bin"
    path.write_bytes(b"110111\n\x80\x81\xff\x00binary\n")
    with pytest.raises(TraceFormatError, match=r"trace\.bin:2:\d+: not UTF-8"):
        TraceAcceptance.from_file(path)
    refused(capsys, ["compare", "--method", "montecarlo", "--target-ms", "30", "--drafter-ms", "3",
                     "--acceptance-trace", str(path)], "trace.bin:2")


def test_huge_run_length_is_a_trace_format_error_not_a_memory_error(tmp_path):
    path = tmp_path / "runs.txt"
    path.write_text("# recorded\n1101\nruns: 99999999999\n")
    with pytest.raises(TraceFormatError, match=r"runs\.txt:3: .*limit"):
        TraceAcceptance.from_file(path)
    with pytest.raises(ResourceLimitError, match="run of 99999999999"):
        TraceAcceptance.from_run_lengths([3, 99999999999])


def test_trace_file_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf1101\nruns: 2 0\n")
    acc = TraceAcceptance.from_file(path)
    assert acc.traces == ((True, True, False, True), (True, True, False, False))


@pytest.mark.parametrize("argv", [
    ["compare", *BASE, "--seed", "-1"],
    ["simulate", "--algorithm", "si", *BASE, "--seed", "-1"],
    ["vocab", "--algorithm", "std", "--seed", "-1"],
    ["heatmap", "--protocol", "repo", "--seed", "-1"],
    ["demo", "--seed", "-1"],
])
def test_cli_negative_seed_is_refused(capsys, argv):
    refused(capsys, argv, "--seed", ">= 0")


def test_cli_gantt_with_unsupported_format_is_refused_before_running(capsys, tmp_path):
    target = tmp_path / "g.txt"
    err = refused(capsys, ["simulate", "--algorithm", "si", *BASE, "--gantt", str(target)], "--gantt", ".png")
    assert ".txt" in err and not target.exists()


@pytest.mark.parametrize("flag", ["--trace", "--gantt"])
def test_cli_output_file_in_a_missing_folder_is_refused_not_created(capsys, tmp_path, flag):
    missing = tmp_path / "no" / "such"
    refused(capsys, ["simulate", "--algorithm", "si", *BASE, flag, str(missing / "out.png")], flag, "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command", [["heatmap", "--no-png"], ["demo"]])
def test_cli_out_folder_needs_an_existing_parent(capsys, tmp_path, command):
    refused(capsys, [*command, "--out", str(tmp_path / "no" / "out")], "--out", "does not exist")
    assert not (tmp_path / "no").exists()
    (tmp_path / "file").write_text("")
    refused(capsys, [*command, "--out", str(tmp_path / "file")], "--out", "is a file")


def test_cli_out_folder_itself_is_created(capsys, tmp_path):
    code, _, err = cli(capsys, ["heatmap", "--no-png", "--out", str(tmp_path / "new")])
    assert code == 0, err
    assert (tmp_path / "new" / "heatmap.csv").exists()


@pytest.mark.parametrize("rng", [-1, "abc", 1.5, True, np.random.RandomState(0)])
def test_compare_and_simulate_refuse_bad_rng(rng):
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=50)
    with pytest.raises(InvalidParameterError, match="rng"):
        compare(s, "montecarlo", rng=rng)
    with pytest.raises(InvalidParameterError, match="rng"):
        simulate(s, "si", replications=2, rng=rng)


@pytest.mark.parametrize("rng", [None, 0, np.int64(7), np.random.SeedSequence(3), np.random.default_rng(1)])
def test_check_rng_accepts_every_documented_kind(rng):
    assert _checks.check_rng(rng) is rng or _checks.check_rng(rng) == rng
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=3, tokens=50)
    assert len(simulate(s, "si", replications=2, rng=rng).runs) == 2


@pytest.mark.parametrize("n", [-1, 0, 2.5])
def test_std_sample_refuses_bad_n(n):
    p, q = np.array([0.5, 0.5]), np.array([0.3, 0.7])
    with pytest.raises(InvalidParameterError, match="n must be an integer >= 1"):
        std.sample(np.random.default_rng(0), p, q, n)
    with pytest.raises(ResourceLimitError, match="steps per call"):
        std.sample(np.random.default_rng(0), p, q, 10**12)
    assert std.sample(np.random.default_rng(0), p, q, 5).emitted.shape == (5,)


# -- silent nonsense -----------------------------------------------------------------------------------


def test_run_once_refuses_probabilities_as_outcomes():
    # was: float outcomes 0.3 were all read as accepted
    s = Scenario.from_ms(30.0, 3.0, 0.8, lookahead=2, tokens=5)
    with pytest.raises(InvalidParameterError, match="bool or 0/1"):
        run_once(s, "si", [0.3] * 5)
    with pytest.raises(InvalidParameterError, match="bool or 0/1"):
        run_once(s, "si", ["1"] * 5)
    as_bool = run_once(s, "si", [True, True, False, True, True])
    assert run_once(s, "si", [1, 1, 0, 1, 1]) == as_bool == run_once(s, "si", np.array([1.0, 1.0, 0.0, 1.0, 1.0]))


def test_huge_latency_cv_is_refused_with_a_reason(capsys):
    # was: simulate --latency-cv 1e6 reported 0.0003 ms/token for a 30 ms target without a word
    refused(capsys, ["simulate", "--algorithm", "si", *BASE, "--latency-cv", "1e6"], "--latency-cv", "median")
    with pytest.raises(InvalidParameterError, match="median"):
        StochasticLatency(ConstantLatency(30.0), cv=1e6)
    assert StochasticLatency(ConstantLatency(30.0), cv=_checks.MAX_LATENCY_CV).cv == _checks.MAX_LATENCY_CV
