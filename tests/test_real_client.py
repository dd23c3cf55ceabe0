"""simspec.real.client_rounds against real, instrumented ``generate`` runs (tiny random models, seconds).

The rounds :func:`client_rounds` finds with the drafter alone must be the rounds transformers runs:
round by round the same candidates, the same matches, the same drafter forwards at the same
widths — with one shared vocabulary, with two different tokenizers (universal assisted generation)
and for prompt lookup; and the forward log of a run must split into the same rounds.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch  # noqa: E402
from transformers.generation import candidate_generator as cg  # noqa: E402

from simspec.errors import InvalidParameterError  # noqa: E402
from simspec.real import bpe_tokenizer, client_rounds, noisy_copy, tiny_model  # noqa: E402
from simspec.real.models import as_loaded  # noqa: E402
from simspec.real.client import generate_kwargs, setting_name  # noqa: E402
from simspec.real.overheads import _Timed, rounds_from_forwards  # noqa: E402
from simspec.real.record import same_vocabulary  # noqa: E402

TEXT = "Beautiful is better than ugly. Explicit is better than implicit. Beautiful is better"


@pytest.fixture(scope="module")
def shared_pair():
    target = tiny_model(seed=0, layers=2, hidden=32)
    return target, noisy_copy(target, 0.3, seed=1)


@pytest.fixture(scope="module")
def uag_pair():
    """A target and a drafter with different BPE vocabularies (300 and 420 tokens)."""
    t = tiny_model(vocab_size=300, seed=0, layers=2, hidden=32)
    d = tiny_model(vocab_size=420, seed=3, layers=1, hidden=32)
    return as_loaded(t, bpe_tokenizer(300), "target-bpe300"), as_loaded(d, bpe_tokenizer(420), "drafter-bpe420")


def _real_run(target, drafter, ids, setting, n_new, log_rounds, generator):
    """One real ``generate`` run: its per-round (candidates, matches), its forwards, its output."""
    rounds = log_rounds(generator)
    forwards: list = []
    x = torch.tensor([ids])
    shared = drafter is None or same_vocabulary(target.tokenizer, drafter.tokenizer)
    saved = drafter.model.generation_config.to_dict() if drafter is not None else None
    with torch.inference_mode(), _Timed(target.model, forwards, "target", lambda: None):
        if drafter is not None:
            with _Timed(drafter.model, forwards, "drafter", lambda: None):
                out = target.model.generate(x, **generate_kwargs(target, drafter, setting, x, n_new, shared))
        else:
            out = target.model.generate(x, **generate_kwargs(target, None, setting, x, n_new, shared))
    if drafter is not None:
        drafter.model.generation_config.update(**saved)
    events = rounds.events
    pairs = [(events[i][1], events[i + 1][1]) for i in range(0, len(events), 2)]
    return pairs, forwards, out[0, len(ids):].tolist()


def _check_same_rounds(target, drafter, ids, setting, n_new, log_rounds, generator):
    mine = client_rounds(target, drafter, ids, setting, max_new_tokens=n_new, prompt="p")
    pairs, forwards, output = _real_run(target, drafter, ids, setting, n_new, log_rounds, generator)
    # round by round: the candidates proposed and the matches kept
    assert [(r["drafted"], r["accepted"]) for r in mine] == pairs
    # the drafter's forwards, at the same widths, in the same rounds; and the log splits the same way
    assert rounds_from_forwards(forwards, len(ids)) == [
        {k: r[k] for k in ("drafted", "drafter_forwards", "drafter_widths")} for r in mine]
    # the rounds emit the run's output: accepted + 1 each, cut at max_new_tokens
    assert sum(r["accepted"] + 1 for r in mine) == len(output) == n_new
    assert all(r["prompt"] == "p" and r["prompt_len"] == len(ids) for r in mine)
    assert [r["round"] for r in mine] == list(range(len(mine)))
    return mine


@pytest.mark.parametrize("setting", [
    {"mode": "assisted", "k": 4},                                                        # threshold 0.4 default
    {"mode": "assisted", "k": 3, "confidence_threshold": 0.0},
    {"mode": "assisted", "k": 2, "schedule": "heuristic", "confidence_threshold": 0.0},
    {"mode": "assisted", "k": 5, "schedule": "heuristic_transient", "confidence_threshold": 0.0},
], ids=setting_name)
def test_shared_vocabulary_rounds_equal_transformers(shared_pair, setting, log_rounds):
    target, drafter = shared_pair
    ids = target.tokenizer.encode(TEXT)
    mine = _check_same_rounds(target, drafter, ids, setting, 40, log_rounds, cg.AssistedCandidateGenerator)
    assert any(r["accepted"] > 0 for r in mine) and any(r["accepted"] < r["drafted"] for r in mine)
    # after the first round, a drafter with a cache feeds only what its cache lacks: 1 or 2 tokens
    assert all(1 <= w <= 2 for r in mine[1:] for w in r["drafter_widths"][:1])
    if setting.get("schedule", "constant") != "constant":
        # the heuristic: +2 after a fully accepted round, else -1 (never below 1)
        for r in mine:
            assert r["k_next"] == (r["k"] + 2 if r["accepted"] == r["drafted"] else max(1, r["k"] - 1))


@pytest.mark.parametrize("setting", [
    {"mode": "assisted", "k": 5, "confidence_threshold": 0.0},
    {"mode": "assisted", "k": 3, "schedule": "heuristic", "confidence_threshold": 0.0},
    {"mode": "assisted", "k": 20},                                                       # transformers' defaults
], ids=setting_name)
def test_different_tokenizers_rounds_equal_transformers(uag_pair, setting, log_rounds):
    target, drafter = uag_pair
    ids = target.tokenizer(TEXT)["input_ids"]
    mine = _check_same_rounds(target, drafter, ids, setting, 32, log_rounds,
                              cg.AssistedCandidateGeneratorDifferentTokenizers)
    # re-tokenisation: candidates in target tokens are not the drafter's forwards one for one
    assert any(r["drafted"] != r["drafter_forwards"] for r in mine)


def test_prompt_lookup_rounds_equal_transformers(shared_pair, log_rounds):
    target, _ = shared_pair
    ids = target.tokenizer.encode(TEXT)
    mine = _check_same_rounds(target, None, ids, {"mode": "prompt_lookup", "k": 3}, 40, log_rounds,
                              cg.PromptLookupCandidateGenerator)
    assert all(r["drafter_forwards"] == 0 for r in mine)


def test_heuristic_does_not_carry_between_runs(shared_pair):
    """generate_kwargs writes k into the drafter's config each run, and client_rounds restores the config."""
    target, drafter = shared_pair
    ids = target.tokenizer.encode(TEXT)
    setting = {"mode": "assisted", "k": 2, "schedule": "heuristic", "confidence_threshold": 0.0}
    before = drafter.model.generation_config.to_dict()
    first = client_rounds(target, drafter, ids, setting, max_new_tokens=24)
    assert drafter.model.generation_config.to_dict() == before
    assert client_rounds(target, drafter, ids, setting, max_new_tokens=24) == first
    assert first[0]["k"] == 2


def test_given_target_output_is_used_and_checked(shared_pair):
    target, drafter = shared_pair
    ids = target.tokenizer.encode(TEXT)
    setting = {"mode": "assisted", "k": 3, "confidence_threshold": 0.0}
    out = client_rounds(target, drafter, ids, {"mode": "prompt_lookup", "k": 2}, max_new_tokens=20)
    greedy = target.model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False)[0, len(ids):].tolist()
    assert client_rounds(target, drafter, ids, setting, max_new_tokens=20, target_output=greedy) == \
        client_rounds(target, drafter, ids, setting, max_new_tokens=20)
    # a different "target" output changes the matches: every proposal is now rejected
    wrong = [(t + 1) % target.vocab_size for t in greedy]
    assert all(r["accepted"] == 0 for r in client_rounds(target, drafter, ids, setting, max_new_tokens=20,
                                                         target_output=wrong))
    with pytest.raises(InvalidParameterError, match="at least max_new_tokens"):
        client_rounds(target, drafter, ids, setting, max_new_tokens=20, target_output=greedy[:5])
    assert sum(r["accepted"] + 1 for r in out) == 20


@pytest.mark.parametrize("setting, match", [
    ({"mode": "plain"}, "no rounds"),
    ({"mode": "beam"}, "needs mode"),
    ({"mode": "assisted", "k": 0}, "k of setting"),
    ({"mode": "assisted", "k": 2, "schedule": "sometimes"}, "schedule must be"),
    ({"mode": "assisted", "k": 2, "confidence_threshold": 1.5}, "confidence_threshold"),
])
def test_bad_settings_are_named(shared_pair, setting, match):
    target, drafter = shared_pair
    with pytest.raises(InvalidParameterError, match=match):
        client_rounds(target, drafter, [1, 2, 3], setting, max_new_tokens=4)


def test_assisted_needs_a_drafter(shared_pair):
    with pytest.raises(InvalidParameterError, match="needs a drafter"):
        client_rounds(shared_pair[0], None, [1, 2, 3], {"mode": "assisted", "k": 2}, max_new_tokens=4)
