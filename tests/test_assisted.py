"""transformers' assisted-generation rounds from a teacher-forced trace: rules pinned, and equal to transformers."""

from __future__ import annotations

import random

import pytest

from simspec.assisted import assisted_rounds
from simspec.errors import InvalidParameterError


def _pairs(rounds):
    return [(r["drafted"], r["accepted"]) for r in rounds]


def test_constant_schedule_drafts_k_and_stops_one_short_of_the_end():
    rounds = assisted_rounds([1, 1, 0, 1, 1, 1, 1, 0, 1, 1], max_new_tokens=10, num_assistant_tokens=3,
                             confidence_threshold=None)
    # at 7 tokens min(3, 10 - 7 - 1) = 2 drafts; at 8, one
    assert _pairs(rounds) == [(3, 2), (3, 3), (2, 0), (1, 1)]
    assert sum(a + 1 for _, a in _pairs(rounds)) == 10
    assert [r["drafter_forwards"] for r in rounds] == [3, 3, 2, 1]
    assert _pairs(assisted_rounds([1, 1, 1], max_new_tokens=3, num_assistant_tokens=5, confidence_threshold=0)) \
        == [(2, 2)]


def test_heuristic_adds_two_when_all_accepted_else_subtracts_one_floor_one():
    rounds = assisted_rounds([1] * 6 + [0] * 6, max_new_tokens=12, num_assistant_tokens=2, schedule="heuristic",
                             confidence_threshold=None)
    assert [r["k"] for r in rounds] == [2, 4, 3, 2, 1, 1, 1]
    assert _pairs(rounds) == [(2, 2), (4, 3), (3, 0), (2, 0), (1, 0), (1, 0), (0, 0)]
    # the last round proposes nothing (one token left) and counts as "all accepted": +2, transformers' rule
    assert rounds[-1]["k_next"] == 3
    constant = assisted_rounds([1] * 6 + [0] * 6, max_new_tokens=12, num_assistant_tokens=2, confidence_threshold=None)
    assert {r["k"] for r in constant} == {2}


def test_confidence_threshold_stops_after_the_low_token():
    outcomes = [1, 1, 1, 1, 1, 1]
    prob = [0.9, 0.3, 0.9, 0.9, 0.9, 0.9]
    rounds = assisted_rounds(outcomes, prob, max_new_tokens=6, num_assistant_tokens=4, confidence_threshold=0.4)
    assert _pairs(rounds)[0] == (2, 2)  # the 0.3 token is proposed, then the drafter stops
    with pytest.raises(InvalidParameterError, match="top1_prob"):
        assisted_rounds(outcomes, max_new_tokens=6, confidence_threshold=0.4)


def test_bad_input_is_named():
    with pytest.raises(InvalidParameterError, match="unobserved"):
        assisted_rounds([1, None, 0], confidence_threshold=None)
    with pytest.raises(InvalidParameterError, match="record more tokens"):
        assisted_rounds([1, 0], max_new_tokens=5, confidence_threshold=None)
    with pytest.raises(InvalidParameterError, match="scikit-learn"):
        assisted_rounds([1, 0], adaptive_threshold=True)


def test_rounds_equal_transformers_assisted_generation(log_rounds):
    """Two random-weight models (the drafter a perturbed copy of the target): transformers' rounds are predicted."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.generation import candidate_generator as cg

    if cg.is_sklearn_available():
        pytest.skip("scikit-learn makes transformers adapt the threshold, which is not modelled")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                   eos_token_id=None)
    target = transformers.LlamaForCausalLM(cfg).eval()
    drafter = transformers.LlamaForCausalLM(cfg).eval()
    drafter.load_state_dict(target.state_dict())
    with torch.no_grad():
        for prm in drafter.parameters():
            prm.add_(0.05 * torch.randn_like(prm))
    accepting = 0
    log = log_rounds(cg.AssistedCandidateGenerator)
    for trial in range(14):
        rnd = random.Random(trial)
        plen, new = rnd.randint(2, 12), rnd.randint(1, 30)
        k = rnd.choice([1, 2, 3, 5, 8])
        schedule = rnd.choice(["constant", "heuristic_transient"])
        theta = rnd.choice([0.0, 0.05, 0.1, 0.3])
        prompt = torch.tensor([[rnd.randrange(48) for _ in range(plen)]])
        with torch.no_grad():
            greedy = target.generate(prompt, max_new_tokens=new, do_sample=False)
            logits = drafter(greedy[:, :-1]).logits[0, plen - 1:]  # teacher forcing along the target's output
            outcomes = (logits.argmax(-1) == greedy[0, plen:]).int().tolist()
            top1 = logits.softmax(-1).max(-1).values.tolist()
            cfg_d = drafter.generation_config
            cfg_d.num_assistant_tokens, cfg_d.num_assistant_tokens_schedule = k, schedule
            cfg_d.assistant_confidence_threshold = theta
            log.clear()
            assisted = target.generate(prompt, max_new_tokens=new, do_sample=False, assistant_model=drafter)
        assert torch.equal(assisted, greedy)
        got = log.rounds()
        want = _pairs(assisted_rounds(outcomes, top1, max_new_tokens=new, num_assistant_tokens=k,
                                      schedule=schedule, confidence_threshold=theta))
        assert got == want, (trial, k, schedule, theta, got, want)
        accepting += sum(a > 0 for _, a in want)
    assert accepting > 0
