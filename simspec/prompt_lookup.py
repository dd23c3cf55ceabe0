"""Prompt lookup (n-gram) drafting, round by round, as transformers runs it.

Saxena, "Prompt Lookup Decoding" (2023, github.com/apoorvumang/prompt-lookup-decoding), as implemented by
transformers' ``PromptLookupCandidateGenerator`` (``generate(..., prompt_lookup_num_tokens=N)``). There is
no drafter model: each round looks the last ``n`` tokens up in the sequence so far (``n`` from
``max_matching_ngram_size`` down to 1, the first match left to right) and proposes the tokens that followed
that match, at most ``num_output_tokens`` of them and never past the end of the sequence. The target
verifies them in one forward and keeps the matching prefix plus one token of its own.

With greedy decoding the output of assisted generation is the target's greedy output, token for token. So
the rounds are a function of that output alone: given the prompt and the target's greedy continuation,
:func:`prompt_lookup_rounds` gives every round's candidates and accepted count exactly as transformers
would, without running a model (a round with no match proposes nothing and is one plain decoding step).
The result is a per-round trace (``docs/guides/real-traces.md``), so a replay prices each round's
verification at its real width, and "what if ``N`` were 3 instead of 10" needs no new run.

>>> seq = [5, 6, 7, 5, 6, 7, 5, 6, 9]          # prompt [5, 6, 7], then the target's greedy output
>>> [(r["drafted"], r["accepted"]) for r in prompt_lookup_rounds(seq, prompt_len=3, num_output_tokens=4)]
[(0, 0), (3, 3), (0, 0)]

Round 1 finds nothing after ``[6, 7]`` or ``[7]`` (both occur only at the end) and emits the target's
``5``; round 2 looks up ``[5]``, proposes the ``6, 7, 5`` that followed it, and the target accepts all
three and adds ``6``; round 3 proposes nothing because one token is left (transformers' rule when
``max_length`` is one past the sequence). ``tests/test_prompt_lookup.py`` checks these rounds against
transformers' own ``generate(prompt_lookup_num_tokens=...)`` on random prompts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from ._checks import int_at_least
from .errors import InvalidParameterError

__all__ = ["prompt_lookup_candidates", "prompt_lookup_rounds"]


def prompt_lookup_candidates(ids: Sequence[int], num_output_tokens: int = 10, max_matching_ngram_size: int = 2,
                             max_length: int | None = None, eos_token_id: int | Sequence[int] | None = None,
                             forbidden: Collection[int] = ()) -> list[int]:
    """The candidates transformers' prompt lookup proposes after the sequence ``ids`` (possibly none).

    For ``n`` from ``min(max_matching_ngram_size, len(ids) − 1)`` down to 1, the windows of ``n`` tokens
    equal to the last ``n`` tokens are scanned left to right; the first whose continuation is non-empty
    gives the candidates ``ids[start : min(start + num_output_tokens, len(ids), max_length)]``. No
    candidate when ``max_length == len(ids) + 1`` (the target's own token ends the generation).
    ``forbidden``: tokens the logits processors forbid now (e.g. the EOS while ``min_new_tokens`` is not
    reached): the candidates stop before the first one, and a match left with none is skipped.
    ``eos_token_id``: the candidates stop before the first EOS (a match left with none ends the search:
    no candidates).

    >>> prompt_lookup_candidates([1, 2, 3, 1, 2], num_output_tokens=2)
    [3, 1]
    """
    ids = list(ids)
    length = len(ids)
    if max_length is not None and max_length == length + 1:
        return []
    eos = set() if eos_token_id is None else ({int(eos_token_id)} if np.ndim(eos_token_id) == 0
                                               else {int(t) for t in eos_token_id})
    cap = length if max_length is None else min(length, max_length)
    for n in range(min(max_matching_ngram_size, length - 1), 0, -1):
        tail = ids[length - n:]
        for idx in range(0, length - n + 1):
            if ids[idx:idx + n] == tail:
                start = idx + n
                end = min(start + num_output_tokens, cap)
                if start < end:
                    chosen = ids[start:end]
                    if forbidden:
                        cut = next((j for j, t in enumerate(chosen) if t in forbidden), len(chosen))
                        chosen = chosen[:cut]
                        if not chosen:
                            continue
                    if eos:
                        chosen = chosen[:next((j for j, t in enumerate(chosen) if t in eos), len(chosen))]
                    return chosen
    return []


def prompt_lookup_rounds(sequence: Sequence[int], prompt_len: int, *, num_output_tokens: int = 10,
                         max_matching_ngram_size: int = 2, max_new_tokens: int | None = None,
                         prompt: str | int = 0, eos_token_id: int | Sequence[int] | None = None,
                         min_new_tokens: int = 0) -> list[dict]:
    """Rounds of greedy prompt-lookup assisted generation whose output is ``sequence[prompt_len:]``.

    ``sequence``: the prompt's token ids followed by the target's greedy continuation (at least
    ``max_new_tokens`` tokens of it; default: all of it). Returns one per-round trace record per round:
    ``{"prompt", "prompt_len", "round", "drafted", "accepted", "drafter_forwards": 0}`` — ``accepted`` is
    the length of the candidates' prefix that equals the target's tokens, and every round emits
    ``accepted + 1`` tokens, cut at ``max_new_tokens`` as transformers cuts them. ``eos_token_id``
    and ``min_new_tokens`` as given to ``generate`` (the EOS is forbidden until ``min_new_tokens`` new
    tokens exist, which changes the candidates: see :func:`prompt_lookup_candidates`); the sequence
    must not contain an EOS before its end (generation would have stopped there).
    """
    seq = [int(t) for t in np.asarray(sequence).ravel()]
    p = int_at_least("prompt_len", prompt_len, 1, "prompt lookup searches the prompt: it needs one token")
    int_at_least("num_output_tokens", num_output_tokens, 1)
    int_at_least("max_matching_ngram_size", max_matching_ngram_size, 1)
    available = len(seq) - p
    new = available if max_new_tokens is None else int_at_least("max_new_tokens", max_new_tokens, 1)
    if new > available or new < 1:
        raise InvalidParameterError(
            f"the sequence holds {available} tokens after the prompt but {new} new tokens were asked for; pass "
            "the prompt followed by the target's greedy output of at least max_new_tokens tokens"
        )
    max_length = p + new
    eos = set() if eos_token_id is None else ({int(eos_token_id)} if np.ndim(eos_token_id) == 0
                                               else {int(t) for t in eos_token_id})
    rounds = []
    length = p
    i = 0
    while length < max_length:
        forbidden = eos if (eos and length - p < min_new_tokens) else ()
        cand = prompt_lookup_candidates(seq[:length], num_output_tokens, max_matching_ngram_size, max_length,
                                        eos_token_id, forbidden)
        target = seq[length:max_length]  # candidates past the last token asked for are verified, then cut
        accepted = 0
        while accepted < min(len(cand), len(target)) and cand[accepted] == target[accepted]:
            accepted += 1
        emitted = min(accepted + 1, max_length - length)
        rounds.append({"prompt": prompt, "prompt_len": p, "round": i, "drafted": len(cand),
                       "accepted": min(accepted, emitted - 1), "drafter_forwards": 0})
        length += emitted
        i += 1
    return rounds
