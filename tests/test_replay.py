"""replay_rounds: recorded rounds priced forward by forward, against hand-computed times."""

import types

import pytest

from simspec import AffineLatency, ConstantLatency
from simspec.errors import InvalidParameterError
from simspec.replay import ReplayResult, plain_decoding_ms, replay_rounds
from simspec.traces import RoundTrace, write_round_trace

# prompt "a" (p = 5): a full round of 2, a zero-candidate round, a round of 3 with 1 accepted and 2 drafter forwards
# prompt "b" (p = 3): a round of 1 rejected, a full round of 2
ROWS = [
    {"prompt": "a", "prompt_len": 5, "round": 0, "drafted": 2, "accepted": 2},
    {"prompt": "a", "prompt_len": 5, "round": 1, "drafted": 0, "accepted": 0},
    {"prompt": "a", "prompt_len": 5, "round": 2, "drafted": 3, "accepted": 1, "drafter_forwards": 2},
    {"prompt": "b", "prompt_len": 3, "round": 0, "drafted": 1, "accepted": 0},
    {"prompt": "b", "prompt_len": 3, "round": 1, "drafted": 2, "accepted": 2},
]


def test_constant_latency_by_hand():
    target, drafter = ConstantLatency(10.0, ttft_ms=40.0), ConstantLatency(2.0, ttft_ms=6.0)
    res = replay_rounds(RoundTrace.from_rows(ROWS), target, drafter)
    a, b = res.rows
    # a: round 0: drafter prefill 6 + 1 decode 2, merged target prefill 40          -> 48 (TTFT), 3 tokens
    #    round 1: no drafts, one target decode of width 1: 10                       -> 58, 1 token
    #    round 2: 2 drafter decodes 4, target verification 10                       -> 72, 2 tokens
    assert (a.tokens, a.rounds, a.speculative_ttft_ms, a.speculative_ms) == (6, 3, 48.0, 72.0)
    # plain: prefill 40 + 5 decodes of 10 = 90
    assert (a.plain_ms, a.plain_ttft_ms) == (90.0, 40.0)
    # b: round 0: drafter prefill 6, target prefill 40 -> 46, 1 token; round 1: 2 drafter decodes 4 + 10 -> 60, 3 tokens
    assert (b.tokens, b.speculative_ttft_ms, b.speculative_ms, b.plain_ms) == (4, 46.0, 60.0, 70.0)
    assert res.tokens == 10 and res.speculative_ms == 132.0 and res.plain_ms == 160.0
    assert res.speedup.mean == pytest.approx(160 / 132)
    assert a.speedup == pytest.approx(90 / 72)


def test_affine_context_dependent_latency_and_overheads_by_hand():
    # decode: 10 + 1·(width − 1) + 0.5·context; prefill: 40 (AffineLatency's ttft, whatever its width)
    target = AffineLatency(10.0, 1.0, ttft_ms=40.0, per_context_token_ms=0.5)
    drafter = AffineLatency(2.0, 0.0, ttft_ms=6.0, per_context_token_ms=0.25)
    oh = types.SimpleNamespace(per_round_ms=1.0, per_draft_token_ms=0.5, per_drafter_forward_ms=0.25,
                               per_emitted_token_ms=0.125)
    res = replay_rounds(RoundTrace.from_rows(ROWS[:3]), target, drafter, oh)
    (a,) = res.rows
    p = 5
    r0 = (6.0 + (2.0 + 0.25 * p)) + 40.0 + (1.0 + 0.5 * 2 + 0.25 * 2 + 0.125 * 3)   # L = 0 -> 3
    r1 = (10.0 + 0.5 * (p + 3 - 1)) + (1.0 + 0.125 * 1)                               # L = 3 -> 4
    r2 = ((2.0 + 0.25 * (p + 4 - 1)) + (2.0 + 0.25 * (p + 4))) + (10.0 + 1.0 * 3 + 0.5 * (p + 4 - 1)) \
        + (1.0 + 0.5 * 3 + 0.25 * 2 + 0.125 * 2)                                          # L = 4 -> 6
    assert a.speculative_ttft_ms == r0
    assert a.speculative_ms == r0 + r1 + r2
    plain = 40.0 + sum(10.0 + 0.5 * (p + m - 1) for m in range(1, 6)) + 0.125 * 6
    assert a.plain_ms == plain == plain_decoding_ms(target, p, 6, 0.125)
    assert res.overheads == {"per_round_ms": 1.0, "per_draft_token_ms": 0.5, "per_drafter_forward_ms": 0.25,
                             "per_emitted_token_ms": 0.125}


def test_overheads_without_the_new_fields_count_zero():
    old = types.SimpleNamespace(message_ms=1.0)  # an Overheads from before the loop-overhead fields
    res = replay_rounds(RoundTrace.from_rows(ROWS), ConstantLatency(10.0, 40.0), ConstantLatency(2.0, 6.0), old)
    assert res.speculative_ms == 132.0


def test_replay_reads_a_file_and_prints_and_exports(tmp_path):
    path = write_round_trace(tmp_path / "r.jsonl", ROWS)
    res = replay_rounds(path, ConstantLatency(10.0, 40.0), ConstantLatency(2.0, 6.0))
    assert isinstance(res, ReplayResult)
    text = str(res)
    assert "replay of 2 recorded prompt(s), 10 tokens" in text and "all prompts" in text
    d = res.to_dict()
    assert d["speculative_ms"] == 132.0 and [r["prompt"] for r in d["rows"]] == ["a", "b"]
    pd = pytest.importorskip("pandas")
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame["speculative_ms"]) == [72.0, 60.0]


def test_prompt_len_is_needed():
    rt = RoundTrace.from_rows([{"prompt": "x", "drafted": 1, "accepted": 1}])
    with pytest.raises(InvalidParameterError, match="prompt 'x' has no prompt_len"):
        replay_rounds(rt, ConstantLatency(1.0), ConstantLatency(1.0))
    assert replay_rounds(rt, ConstantLatency(1.0), ConstantLatency(1.0), prompt_len=4).rows[0].prompt_len == 4
    with pytest.raises(InvalidParameterError, match="integer >= 1"):
        replay_rounds(rt, ConstantLatency(1.0), ConstantLatency(1.0), prompt_len=0)


def test_recorded_drafter_widths_are_priced_and_round_trip(tmp_path):
    """A re-tokenised drafter's catch-up forward is priced at its recorded width; the prefill at its own width."""
    rows = [{"prompt": "a", "prompt_len": 5, "drafted": 3, "accepted": 1, "drafter_forwards": 2, "drafter_widths": [7, 1]},
            {"prompt": "a", "prompt_len": 5, "drafted": 0, "accepted": 0, "drafter_forwards": 2, "drafter_widths": [4, 1]},
            {"prompt": "a", "prompt_len": 5, "drafted": 2, "accepted": 2, "drafter_forwards": 1}]
    target = AffineLatency(10.0, 1.0, ttft_ms=40.0)
    drafter = AffineLatency(2.0, 0.5, ttft_ms=6.0)
    (a,) = replay_rounds(RoundTrace.from_rows(rows), target, drafter).rows
    # round 0: drafter prefill (6, whatever its width) + decode 1 (2); target prefill 40
    # round 1: drafter decodes of widths 4 and 1 (2 + 1.5, 2), no candidate: a width-1 target decode (10)
    # round 2: no recorded widths: one width-1 drafter decode (2), verification of width 3 (12)
    assert a.speculative_ms == (6 + 2 + 40) + (3.5 + 2 + 10) + (2 + 12)
    path = write_round_trace(tmp_path / "w.jsonl", RoundTrace.from_rows(rows))
    from simspec.traces import load_round_trace

    back = load_round_trace(path)
    assert back.prompts[0].drafter_widths == ((7, 1), (4, 1), None)
    assert back.to_rows()[0]["drafter_widths"] == [7, 1] and "drafter_widths" not in back.to_rows()[2]
    assert back.prompts[0].widths(2) == (1,)


# -- simspec replay (the command) ------------------------------------------------------------------------


def _run_cli(argv, capsys):
    from simspec.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_replay_command_prices_a_round_trace_by_hand(tmp_path, capsys):
    path = write_round_trace(tmp_path / "r.jsonl", RoundTrace.from_rows(ROWS))
    code, out, _ = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2", "--json"], capsys)
    assert code == 0
    res = __import__("json").loads(out)
    assert res["rounds"] == "recorded rounds"
    # every forward costs its ms whatever its width, prefills included (ConstantLatency(ms, ttft=ms))
    ref = replay_rounds(RoundTrace.from_rows(ROWS), ConstantLatency(10.0, ttft_ms=10.0), ConstantLatency(2.0, ttft_ms=2.0))
    assert res["speculative_ms"] == ref.speculative_ms and res["plain_ms"] == ref.plain_ms
    code, out, _ = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2"], capsys)
    assert "recorded rounds; overheads: none" in out and "predicted speedup" in out


def test_replay_command_rebuilds_assisted_rounds_from_a_position_trace(tmp_path, capsys):
    import json

    from simspec.assisted import assisted_rounds
    from simspec.traces import write_acceptance_trace

    outs = [1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    probs = [0.9, 0.8, 0.3, 0.9, 0.7, 0.95, 0.2, 0.5, 0.9, 0.9, 0.9, 0.9]
    path = write_acceptance_trace(tmp_path / "a.jsonl", [{"prompt": "p", "prompt_len": 6, "outcomes": outs,
                                                          "signals": {"top1_prob": probs}}], provenance={})
    code, out, _ = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2", "--num-assistant-tokens",
                             "4", "--schedule", "heuristic", "--confidence-threshold", "0.4", "--json"], capsys)
    assert code == 0
    res = json.loads(out)
    rows = assisted_rounds(outs, probs, num_assistant_tokens=4, schedule="heuristic", confidence_threshold=0.4,
                           prompt="p", prompt_len=6)
    ref = replay_rounds(RoundTrace.from_rows(rows), ConstantLatency(10.0, ttft_ms=10.0),
                        ConstantLatency(2.0, ttft_ms=2.0))
    assert res["rows"][0]["rounds"] == len(rows) and res["speculative_ms"] == ref.speculative_ms
    assert res["rounds"].startswith("rounds rebuilt: num_assistant_tokens 4, schedule heuristic")


def test_replay_command_errors_and_warnings_are_one_line(tmp_path, capsys):
    from simspec.traces import write_acceptance_trace

    path = write_acceptance_trace(tmp_path / "a.jsonl", [{"prompt": "p", "prompt_len": 6,
                                                          "outcomes": [1, None, 0, 1]}], provenance={})
    code, _, err = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2",
                             "--confidence-threshold", "0"], capsys)
    assert code == 2 and "add --unobserved-as-rejected" in err
    code, _, err = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2"], capsys)
    assert code == 2 and "no top1_prob signal" in err and "--confidence-threshold 0" in err
    code, out, _ = _run_cli(["replay", str(path), "--target-ms", "10", "--drafter-ms", "2", "--confidence-threshold",
                             "0", "--unobserved-as-rejected"], capsys)
    assert code == 0 and "1 unobserved positions counted as rejected" in out
    code, _, err = _run_cli(["replay", str(tmp_path / "none.jsonl"), "--target-ms", "1", "--drafter-ms", "1"], capsys)
    assert code == 2 and "no trace file" in err
    code, _, err = _run_cli(["replay", str(path), "--target-ms", "-1", "--drafter-ms", "1"], capsys)
    assert code == 2 and "--target-ms must be a latency in ms > 0" in err
    # a profile asked outside its measured range warns in one line, without a Python source line
    rt = write_round_trace(tmp_path / "r.jsonl", RoundTrace.from_rows(ROWS))
    code, _, err = _run_cli(["replay", str(rt), "--target-profile", "builtin:cpu-real-pair:gemma3-270m",
                             "--drafter-ms", "2"], capsys)
    assert code == 0
    warned = [ln for ln in err.splitlines() if ln]
    assert warned and all(ln.startswith("simspec replay: warning: profile 'gemma3-270m'") for ln in warned)
