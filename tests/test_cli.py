"""The command line: tables, JSON schema, files written, exit code 2 on bad input."""

import csv
import json
import shutil
import subprocess

import pytest

from simspec.cli import main

BASE = ["compare", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8"]


def run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_table_lists_all_algorithms_and_speedups(capsys):
    code, out, _ = run(capsys, BASE)
    assert code == 0
    for word in ("non-SI", "SI", "DSI", "latency per token (ms)", "end-to-end latency", "GPU-seconds per token",
                 "SI vs non-SI", "DSI vs SI", "DSI vs non-SI", "DSI vs faster of SI, non-SI"):
        assert word in out
    assert "1.446x" in out  # DSI vs SI at a=0.8, c=0.1: (1-a)(kc+1)/(1-a^{k+1}) at k=6 over a c + 1 - a


@pytest.mark.parametrize("method", ["theory", "montecarlo"])
def test_compare_json_schema(capsys, method):
    code, out, _ = run(capsys, BASE + ["--json", "--method", method, "--reps", "20", "--tokens", "300"])
    assert code == 0
    obj = json.loads(out)
    for alg in ("nonsi", "si", "dsi"):
        for key in ("latency_per_token_ms", "lookahead", "target_servers", "latency_ms", "gpu_seconds_per_token"):
            assert key in obj[alg]
    assert set(obj["speedup"]) == {"si_vs_nonsi", "dsi_vs_si", "dsi_vs_nonsi", "dsi_vs_baseline"}
    if method == "montecarlo":
        lo, hi = obj["dsi"]["latency_per_token_ms_ci"]
        assert lo < obj["dsi"]["latency_per_token_ms"] < hi
        assert set(obj["speedup_ci"]) == set(obj["speedup"])
    else:
        assert obj["dsi"]["latency_per_token_ms"] == pytest.approx(30 * (0.8 * 0.1 + 0.2))


def test_compare_fixed_lookahead_servers_and_bursty(capsys):
    code, out, _ = run(capsys, BASE + ["--lookahead", "3", "--servers", "5", "--json"])
    obj = json.loads(out)
    assert code == 0 and obj["si"]["lookahead"] == 3 and obj["dsi"]["target_servers"] == 5
    code, out, _ = run(capsys, BASE + ["--burstiness", "0.9", "--method", "montecarlo", "--reps", "10", "--json"])
    assert code == 0 and "MarkovAcceptance" in json.loads(out)["scenario"]["acceptance"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--acceptance", "1.2"], "--acceptance must be a probability in [0, 1]"),
        (["--drafter-ms", "-1"], "--drafter-ms must be a latency in ms > 0"),
        (["--lookahead", "0"], "--lookahead must be an integer >= 1"),
        (["--lookahead", "many"], "--lookahead must be an integer >= 1 or 'best'"),
        (["--tokens", "0"], "--tokens must be an integer >= 1"),
        (["--lookahead", "1", "--servers", "3"], "raise the servers"),
        (["--burstiness", "0.5"], "montecarlo"),
        (["--method", "exact"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(capsys, extra, needle):
    with pytest.raises(SystemExit) if extra[0] == "--method" else _nullcontext() as info:
        code = main(BASE + extra)
    out, err = capsys.readouterr()
    code = info.value.code if info else code
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and out == ""


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_missing_trace_file_is_a_clear_error(capsys, tmp_path):
    argv = ["compare", "--target-ms", "30", "--drafter-ms", "3", "--method", "montecarlo"]
    code, _, err = run(capsys, argv + ["--acceptance-trace", str(tmp_path / "nope.txt")])
    assert code == 2 and "nope.txt" in err
    code, _, err = run(capsys, argv + ["--acceptance-trace", str(tmp_path / "nope.txt"), "--acceptance", "0.5"])
    assert code == 2 and "not both" in err
    code, _, err = run(capsys, argv)
    assert code == 2 and "--acceptance is required" in err


def test_trace_replay_from_the_command_line(capsys, tmp_path):
    trace = tmp_path / "runs.txt"
    trace.write_text("runs: 4 0 7 2 9 1\nruns: 3 3 3\n")
    argv = ["compare", "--target-ms", "30", "--drafter-ms", "3", "--method", "montecarlo", "--reps", "10",
            "--tokens", "40", "--acceptance-trace", str(trace), "--json"]
    code, _, err = run(capsys, argv)
    assert code == 2 and "--wrap" in err  # traces shorter than --tokens are refused unless wrapped
    code, out, _ = run(capsys, argv + ["--wrap"])
    assert code == 0 and json.loads(out)["scenario"]["acceptance"].startswith("TraceAcceptance(2 trace(s)")


def test_heatmap_writes_csv_and_png(capsys, tmp_path):
    code, out, _ = run(capsys, ["heatmap", "--protocol", "repo", "--out", str(tmp_path)])
    assert code == 0 and "heatmap.csv" in out
    with open(tmp_path / "heatmap.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 21 * 21
    assert {"c", "a", "si_vs_nonsi", "dsi_vs_si", "dsi_vs_nonsi", "dsi_vs_baseline", "si_lookahead",
            "dsi_lookahead", "dsi_servers"} <= set(rows[0])
    assert json.loads((tmp_path / "heatmap.json").read_text())["command"] == "simspec heatmap --protocol repo --seed 0"
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_demo_prints_published_beside_simspec(capsys, tmp_path):
    code, out, _ = run(capsys, ["demo", "--out", str(tmp_path)])
    assert code == 0
    assert "Vicuna-13B / Vicuna-68M" in out and "1.47x" in out and "Phi3-14B / Phi3-4B" in out
    assert (tmp_path / "heatmap.png").exists() and (tmp_path / "heatmap.csv").exists()


@pytest.mark.skipif(shutil.which("simspec") is None, reason="console script not installed")
def test_console_script_is_installed():
    res = subprocess.run(["simspec", "--help"], capture_output=True, text=True, check=True)
    assert "compare" in res.stdout and "heatmap" in res.stdout and "demo" in res.stdout
    res = subprocess.run(["simspec", "compare", "--target-ms", "1", "--drafter-ms", "1", "--acceptance", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1


SIM = ["simulate", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.8", "--tokens", "120",
       "--replications", "4"]


def test_simulate_json_has_the_promised_fields(capsys):
    code, out, _ = run(capsys, SIM + ["--algorithm", "dsi", "--servers", "4", "--lookahead", "5", "--json"])
    assert code == 0
    obj = json.loads(out)
    for key in ("latency_ms", "latency_per_token_ms", "ttft_ms", "target_forwards", "target_forwards_wasted",
                "gpu_seconds", "peak_servers_busy", "tokens", "latency_ms_ci"):
        assert key in obj, key
    assert obj["peak_servers_busy"] <= 4 and obj["tokens"] == 120 and obj["lookahead"] == 5


def test_simulate_same_seed_pairs_algorithms_and_writes_trace_and_gantt(capsys, tmp_path):
    lat = {}
    for alg in ("nonsi", "si", "dsi"):
        code, out, _ = run(capsys, SIM + ["--algorithm", alg, "--json", "--seed", "3"])
        assert code == 0
        lat[alg] = json.loads(out)["latency_ms"]
    assert lat["dsi"] < lat["si"] < lat["nonsi"]
    trace, gantt = tmp_path / "ev.jsonl", tmp_path / "g.png"
    code, out, _ = run(capsys, SIM + ["--algorithm", "dsi", "--servers", "3", "--queue", "lifo", "--message-ms", "0.5",
                                      "--sync-ms", "1", "--latency-cv", "0.1", "--trace", str(trace),
                                      "--gantt", str(gantt)])
    assert code == 0 and "queue lifo" in out and "peak servers busy" in out
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert events[-1]["event"] in ("done", "verify_cancel", "chain_cancel", "draft_cancel")
    assert gantt.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("extra, needle", [
    (["--algorithm", "dsi", "--message-ms", "-1"], "--message-ms must be >= 0"),
    (["--algorithm", "dsi", "--replications", "0"], "--replications must be an integer >= 1"),
    (["--algorithm", "dsi", "--latency-cv", "nan"], "--latency-cv must be >= 0"),
])
def test_simulate_bad_input(capsys, extra, needle):
    code, out, err = run(capsys, SIM + extra)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
