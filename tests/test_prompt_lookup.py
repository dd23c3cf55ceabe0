"""Prompt lookup rounds: the candidate rule pinned token by token, and equal to transformers' own rounds."""

from __future__ import annotations

import random

import pytest

from simspec.errors import InvalidParameterError
from simspec.prompt_lookup import prompt_lookup_candidates, prompt_lookup_rounds


def test_longest_ngram_first_then_first_match_left_to_right():
    # the 2-gram [1, 2] matches at 0 (continuation 3, 9) before the 1-gram [2] is tried
    assert prompt_lookup_candidates([1, 2, 3, 9, 2, 7, 1, 2], num_output_tokens=2) == [3, 9]
    # no 2-gram match: the 1-gram [2] matches first at index 1 (continuation 3 ...)
    assert prompt_lookup_candidates([1, 2, 3, 9, 8, 2], num_output_tokens=3) == [3, 9, 8]
    # the ngram size is capped by max_matching_ngram_size: with 1, only [2] is looked up
    assert prompt_lookup_candidates([4, 2, 5, 1, 2], num_output_tokens=1, max_matching_ngram_size=1) == [5]


def test_continuation_is_cut_at_the_sequence_end_and_skips_empty_matches():
    # [3] occurs at 2 and at the end; the match at 2 has continuation [3] (cut at the end of the sequence)
    assert prompt_lookup_candidates([1, 2, 3, 3], num_output_tokens=5) == [3]
    # a match whose continuation is empty (the tail itself) gives nothing; no other match: no candidates
    assert prompt_lookup_candidates([1, 2, 3], num_output_tokens=5) == []


def test_no_candidates_when_one_token_is_left():
    assert prompt_lookup_candidates([1, 2, 1], num_output_tokens=3, max_length=4) == []
    assert prompt_lookup_candidates([1, 2, 1], num_output_tokens=3, max_length=5) == [2, 1]


def test_rounds_emit_exactly_the_new_tokens():
    seq = [5, 6, 7, 5, 6, 7, 5, 6, 9, 5, 6, 7]
    for n in (1, 2, 3, 5, 10):
        rounds = prompt_lookup_rounds(seq, 3, num_output_tokens=n)
        assert sum(r["accepted"] + 1 for r in rounds) == len(seq) - 3
        assert all(0 <= r["accepted"] <= r["drafted"] <= n for r in rounds)
        assert [r["round"] for r in rounds] == list(range(len(rounds)))
    # the worked example of the module docstring
    rounds = prompt_lookup_rounds(seq[:9], 3, num_output_tokens=4)
    assert [(r["drafted"], r["accepted"]) for r in rounds] == [(0, 0), (3, 3), (0, 0)]


def test_bad_input_is_named():
    with pytest.raises(InvalidParameterError, match="max_new_tokens"):
        prompt_lookup_rounds([1, 2, 3], 2, max_new_tokens=5)
    with pytest.raises(InvalidParameterError, match="prompt_len"):
        prompt_lookup_rounds([1, 2, 3], 0)


def test_rounds_equal_transformers_prompt_lookup(log_rounds):
    """On a random-weight model, transformers' rounds (candidates, matches) are the ones predicted from its greedy output."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.generation import candidate_generator as cg

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    model = transformers.LlamaForCausalLM(cfg).eval()
    nontrivial = 0
    log = log_rounds(cg.PromptLookupCandidateGenerator)
    for trial in range(16):
        rnd = random.Random(trial)
        plen, new = rnd.randint(2, 16), rnd.randint(1, 30)
        n_tok, ngram = rnd.choice([1, 2, 3, 5, 10]), rnd.choice([1, 2, 3])
        prompt = torch.tensor([[rnd.randrange(48) for _ in range(plen)]])
        kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False)
        with torch.no_grad():
            greedy = model.generate(prompt, **kw)
            log.clear()
            assisted = model.generate(prompt, prompt_lookup_num_tokens=n_tok, max_matching_ngram_size=ngram, **kw)
        assert torch.equal(greedy, assisted)
        got = log.rounds()
        want = [(r["drafted"], r["accepted"]) for r in
                prompt_lookup_rounds(greedy[0].tolist(), plen, num_output_tokens=n_tok,
                                     max_matching_ngram_size=ngram, max_new_tokens=new,
                                     eos_token_id=cfg.eos_token_id, min_new_tokens=new)]
        assert got == want, (trial, got, want)
        nontrivial += sum(a > 0 for _, a in want)
    assert nontrivial > 0  # some rounds did accept candidates: the check is not only of empty rounds


def test_forbidden_tokens_skip_to_the_next_match_but_an_eos_ends_the_search():
    seq = [1, 2, 3, 1, 4, 1]
    assert prompt_lookup_candidates(seq, 3) == [2, 3, 1]
    assert prompt_lookup_candidates(seq, 3, forbidden={2}) == [4, 1]  # first match cut to nothing: next match
    assert prompt_lookup_candidates(seq, 3, eos_token_id=2) == []  # cut at the EOS: no candidates at all
    assert prompt_lookup_candidates(seq, 3, eos_token_id=[9, 3]) == [2]
