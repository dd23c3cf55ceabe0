"""Per-position acceptance of a real drafter/target pair, recorded by teacher forcing.

For each prompt the target generates greedily (``max_new_tokens``, temperature 0); then the
drafter reads the prompt and the target's whole output in **one** forward (teacher forcing)
and, at every output position ``j``, its argmax is compared with the target's token there.
With greedy verification (transformers' assisted generation, ``do_sample=False``) a draft
token at ``j`` is accepted exactly when it equals the target's token, given the prefix is the
target's own — which is what teacher forcing gives.  The result is the per-position acceptance
trace format (JSON lines: a header with provenance, one object per prompt with ``outcomes``
and ``signals``; ``docs/guides/real-models.md``).

Two comparison rules; the provenance's ``outcome_rule`` says which one was used:

``token-id`` (one shared vocabulary)
    ``outcomes[j] = 1`` iff ``argmax drafter(prompt + output[:j]) == output[j]``, as token ids.

``string`` (different tokenizers, as in transformers' universal assisted generation)
    The target's output is decoded to text; each target token ``j`` covers the characters
    ``[s_j, e_j)`` of it (from decoding growing prefixes of the output).  The text is
    re-tokenised with the drafter's tokenizer (prompt and output encoded apart, so that no
    drafter token straddles the prompt's end) and the drafter is teacher-forced on it.  Where
    one of the drafter's tokens also starts at character ``s_j``, the drafter's proposal at
    ``j`` is its argmax there, decoded in context; ``outcomes[j] = 1`` iff that text equals
    target token ``j``'s text exactly (a proposal covering more or fewer characters counts
    as a rejection), else 0.  Where no drafter token starts at ``s_j`` (the drafter's tokens
    straddle the target's boundary), or target token ``j`` decodes to nothing (a special
    token), or the decoded prefixes do not line up with the text, ``outcomes[j]`` is ``null``:
    unobserved, not rejected.  The signals there are null too.

Signals (each position's drafter distribution, softmax of its logits at temperature 1):
``top1_prob``, ``entropy`` in nats, ``topk_mass`` (``k = top_k``, 10 by default; written
into the provenance).

**Sampled** (``temperature=T``, one shared vocabulary): the target *samples* its output at
temperature ``T`` (no top-k or top-p), and speculative sampling (rejection sampling, Leviathan
et al. 2023) accepts a draft at position ``j`` with probability ``α_j = Σ_x min(p_j(x), q_j(x))``,
``p_j`` and ``q_j`` the target's and the drafter's distributions there at temperature ``T``
(both teacher-forced on the target's sampled output).  The signal ``acceptance_rate`` holds
``α_j``; ``outcomes[j]`` is a draw of Bernoulli(``α_j``) from ``numpy.random.default_rng(seed)``
(the same seed gives the same trace); the drafter's signals are at temperature ``T``.  With two
vocabularies the draft is TLI's (Timor et al. 2025, arXiv 2502.05202: the drafter's distribution
restricted to the token texts both vocabularies share, :func:`token_intersection`), observed at
the target tokens the string rule observes: ``α_j = Σ_{t∈I} min(p_j(t), q(t)/q(I))``.

>>> from simspec.real import tiny_model
>>> recs = record_trace(tiny_model(seed=0, layers=1), tiny_model(seed=1, layers=1), ["Beautiful is better"],
...                     max_new_tokens=5, progress=False)
>>> recs[0]["prompt"], recs[0]["prompt_len"], len(recs[0]["outcomes"]), sorted(recs[0]["signals"])
('0', 20, 5, ['entropy', 'top1_prob', 'topk_mass'])
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any, Iterable, Sequence

from .._checks import int_at_least
from ..errors import InvalidParameterError, VocabularyError
from . import require_models
from .corpus import Prompt
from .measure import check_output_path, progress_bar, versions
from .models import LoadedModel, as_loaded

__all__ = ["record_trace", "write_trace", "same_vocabulary", "token_intersection"]


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two tokenizers map the same strings to the same ids (``None``: token ids only, taken as shared)."""
    if a is None or b is None or a is b:
        return True
    if a == b:
        return True
    try:
        return a.get_vocab() == b.get_vocab()
    except AttributeError:
        return False


def _prompts(prompts: Iterable[Any]) -> list[tuple[str, Any]]:
    """``(id, text or token ids)`` pairs from strings, :class:`Prompt`\\ s, ``(id, text)`` pairs or id lists."""
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, Prompt) or (isinstance(p, tuple) and len(p) == 2 and isinstance(p[1], str)):
            out.append((str(p[0]), p[1]))
        elif isinstance(p, str):
            out.append((str(i), p))
        else:
            try:
                ids = [int(t) for t in p]
            except (TypeError, ValueError):
                raise InvalidParameterError(f"prompt {i} must be a string, a (id, text) pair or a list of token "
                                            f"ids, got {p!r}") from None
            out.append((str(i), ids))
    if not out:
        raise InvalidParameterError("prompts must not be empty")
    return out


def _encode(tok: Any, text: str, special: bool) -> list[int]:
    return [int(t) for t in tok.encode(text, add_special_tokens=special)]


def _decode(tok: Any, ids: Sequence[int]) -> str:
    return tok.decode(list(ids), skip_special_tokens=True)


def _signals(logits, top_k: int):
    """Top-1 probability, entropy (nats) and top-k mass of each row of ``logits`` (float64 lists)."""
    import torch

    logp = torch.log_softmax(logits.double(), dim=-1)
    p = logp.exp()
    top1 = p.max(dim=-1).values
    entropy = (-(p * logp).nan_to_num().sum(dim=-1)).clamp_min(0.0)  # 0·log 0 = 0; rounding never below 0
    topk = p.topk(min(top_k, p.shape[-1]), dim=-1).values.sum(dim=-1).clamp_max(1.0)
    return top1.tolist(), entropy.tolist(), topk.tolist()


def _generate(loaded: LoadedModel, ids: list[int], max_new_tokens: int) -> list[int]:
    import torch

    x = torch.tensor([ids], device=loaded.device)
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False, "attention_mask": torch.ones_like(x)}
    if loaded.model.generation_config.pad_token_id is None:
        kwargs["pad_token_id"] = loaded.model.generation_config.eos_token_id or 0
    out = loaded.model.generate(x, **kwargs)
    return [int(t) for t in out[0, len(ids):]]


def _teacher_forced(loaded: LoadedModel, ids: list[int]):
    """The drafter's logits after every prefix of ``ids`` (row ``i``: the prediction of token ``i + 1``)."""
    import torch

    x = torch.tensor([ids], device=loaded.device)
    return loaded.model(input_ids=x, use_cache=False).logits[0].float()


def _by_id(target: LoadedModel, drafter: LoadedModel, ids: list[int], top_k: int, max_new_tokens: int):
    out = _generate(target, ids, max_new_tokens)
    if not out:
        return [], {"top1_prob": [], "entropy": [], "topk_mass": []}
    if max(ids + out) >= drafter.vocab_size:
        raise VocabularyError(f"the target produced token id {max(ids + out)}, outside the drafter's vocabulary of "
                              f"{drafter.vocab_size}; give both tokenizers so that outcomes compare strings")
    p = len(ids)
    logits = _teacher_forced(drafter, ids + out[:-1])[p - 1:]
    pred = logits.argmax(dim=-1).tolist()
    outcomes = [int(a == b) for a, b in zip(pred, out)]
    top1, ent, topk = _signals(logits, top_k)
    return outcomes, {"top1_prob": top1, "entropy": ent, "topk_mass": topk}


def _sample_output(target: LoadedModel, ids: list[int], max_new_tokens: int, temperature: float, rng) -> list[int]:
    """The target's output sampled at ``temperature`` (no top-k, no top-p), seeded from ``rng``."""
    import torch

    x = torch.tensor([ids], device=target.device)
    kwargs = {"max_new_tokens": max_new_tokens, "do_sample": True, "temperature": float(temperature), "top_k": 0,
              "top_p": 1.0, "min_p": None, "attention_mask": torch.ones_like(x)}
    if target.model.generation_config.pad_token_id is None:
        kwargs["pad_token_id"] = target.model.generation_config.eos_token_id or 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**63)))
        return [int(t) for t in target.model.generate(x, **kwargs)[0, len(ids):]]


def token_intersection(target: LoadedModel, drafter: LoadedModel) -> Any:
    """``d2t[d]``: the target token whose text equals drafter token ``d``'s, or −1 (the intersection ``I``).

    Each token is decoded alone; a text that two tokens of one vocabulary share, or that is
    empty (special tokens), is left out of ``I`` (Timor et al. 2025, arXiv 2502.05202, define
    ``I`` on distinct strings).
    """
    import numpy as np

    def texts(m: LoadedModel) -> dict[str, int]:
        seen: dict[str, int] = {}
        dup: set[str] = set()
        for i in range(m.vocab_size):
            t = _decode(m.tokenizer, [i])
            if not t:
                continue
            if t in seen:
                dup.add(t)
            seen[t] = i
        return {t: i for t, i in seen.items() if t not in dup}

    tt, dt = texts(target), texts(drafter)
    d2t = np.full(drafter.vocab_size, -1, dtype=np.int64)
    for t, d in dt.items():
        if t in tt:
            d2t[d] = tt[t]
    return d2t


def _sampled_tli(target: LoadedModel, drafter: LoadedModel, prompt: str, top_k: int, max_new_tokens: int,
                 temperature: float, rng, d2t):
    """Two vocabularies, sampled: TLI's acceptance ``Σ_{d∈I} min(p(d), q(d)/q(I))`` at aligned positions."""
    import torch

    ids = _encode(target.tokenizer, prompt, True)
    out = _sample_output(target, ids, max_new_tokens, temperature, rng)
    n = len(out)
    outcomes: list[int | None] = [None] * n
    signals: dict[str, list[float | None]] = {k: [None] * n for k in ("top1_prob", "entropy", "topk_mass",
                                                                     "acceptance_rate")}
    text, dout, q_logits, pairs = _aligned(target, drafter, prompt, out)
    if q_logits is None:
        return outcomes, signals
    q_logits = q_logits / temperature
    p = torch.softmax(_teacher_forced(target, ids + out[:-1])[len(ids) - 1:].double() / temperature, dim=-1)
    q = torch.softmax(q_logits.double(), dim=-1)
    inside = torch.as_tensor((d2t >= 0).nonzero()[0], device=q.device)
    mapped = torch.as_tensor(d2t[d2t >= 0], device=p.device)
    top1, ent, topk = _signals(q_logits, top_k)
    draws = rng.random(n)
    for j, i, _span in pairs:
        q_in = q[i, inside]
        mass = float(q_in.sum())
        if mass <= 0:
            continue  # no draft the target could read: unobserved
        alpha = float(torch.minimum(p[j, mapped], q_in / mass).sum().clamp(0.0, 1.0))
        outcomes[j] = int(draws[j] < alpha)
        signals["acceptance_rate"][j] = alpha
        signals["top1_prob"][j], signals["entropy"][j], signals["topk_mass"][j] = top1[i], ent[i], topk[i]
    return outcomes, signals


def _sampled(target: LoadedModel, drafter: LoadedModel, ids: list[int], top_k: int, max_new_tokens: int,
             temperature: float, rng):
    """The target samples at ``temperature``; ``α_j = Σ min(p_j, q_j)``; outcomes drawn from ``rng``."""
    import torch

    out = _sample_output(target, ids, max_new_tokens, temperature, rng)
    if not out:
        return [], {"top1_prob": [], "entropy": [], "topk_mass": [], "acceptance_rate": []}
    if max(ids + out) >= drafter.vocab_size:
        raise VocabularyError(f"the target produced token id {max(ids + out)}, outside the drafter's vocabulary of "
                              f"{drafter.vocab_size}: sampled recording needs one shared vocabulary")
    n = len(ids)
    q_logits = _teacher_forced(drafter, ids + out[:-1])[n - 1:] / temperature
    p_logits = _teacher_forced(target, ids + out[:-1])[n - 1:] / temperature
    width = min(p_logits.shape[-1], q_logits.shape[-1])
    p = torch.softmax(p_logits.double(), dim=-1)
    q = torch.softmax(q_logits.double(), dim=-1)
    alpha = torch.minimum(p[:, :width], q[:, :width]).sum(dim=-1).clamp(0.0, 1.0).tolist()
    outcomes = [int(u < a) for u, a in zip(rng.random(len(alpha)).tolist(), alpha)]
    top1, ent, topk = _signals(q_logits, top_k)
    return outcomes, {"top1_prob": top1, "entropy": ent, "topk_mass": topk, "acceptance_rate": alpha}


def _spans(tok: Any, ids: list[int], text: str) -> list[tuple[int, int] | None]:
    """Character span ``[s, e)`` of each token of ``ids`` in ``text``, from decoded prefixes.

    Token ``i`` spans from the end of ``decode(ids[:i])`` to the end of ``decode(ids[:i+1])``;
    None where either prefix is not a prefix of ``text`` (e.g. a byte that ends inside a character).
    """
    ends = []
    for i in range(len(ids) + 1):
        prefix = _decode(tok, ids[:i])
        ends.append(len(prefix) if text.startswith(prefix) else None)
    return [(a, b) if a is not None and b is not None and b >= a else None for a, b in zip(ends, ends[1:])]


def _aligned(target: LoadedModel, drafter: LoadedModel, prompt: str, out: list[int]):
    """The target's output text, re-tokenised for the drafter; for each target token the drafter index there.

    Returns ``(text, dout, logits, pairs)``: the drafter's teacher-forced logits over its own
    tokens of the output, and ``(j, i, span)`` for every target token ``j`` whose span starts
    where drafter token ``i`` starts (the positions the string rule observes).
    """
    ttok, dtok = target.tokenizer, drafter.tokenizer
    text = _decode(ttok, out)
    tspans = _spans(ttok, out, text)
    dprompt, dout = _encode(dtok, prompt, True), _encode(dtok, text, False)
    if not dout or not out:
        return text, dout, None, []
    dspans = _spans(dtok, dout, text)
    starts = {s[0]: i for i, s in enumerate(dspans) if s is not None and s[1] > s[0]}
    logits = _teacher_forced(drafter, dprompt + dout[:-1])[len(dprompt) - 1:]
    pairs = [(j, starts[span[0]], span) for j, span in enumerate(tspans)
             if span is not None and span[1] > span[0] and span[0] in starts]
    return text, dout, logits, pairs


def _by_string(target: LoadedModel, drafter: LoadedModel, prompt: str, top_k: int, max_new_tokens: int):
    ttok, dtok = target.tokenizer, drafter.tokenizer
    out = _generate(target, _encode(ttok, prompt, True), max_new_tokens)
    n = len(out)
    outcomes: list[int | None] = [None] * n
    signals: dict[str, list[float | None]] = {k: [None] * n for k in ("top1_prob", "entropy", "topk_mass")}
    text, dout, logits, pairs = _aligned(target, drafter, prompt, out)
    if logits is None:
        return outcomes, signals
    pred = logits.argmax(dim=-1).tolist()
    top1, ent, topk = _signals(logits, top_k)
    for j, i, span in pairs:
        before = _decode(dtok, dout[:i])
        proposal = _decode(dtok, dout[:i] + [pred[i]])
        piece = proposal[len(before):] if proposal.startswith(before) else None
        outcomes[j] = int(piece == text[span[0]:span[1]])
        signals["top1_prob"][j], signals["entropy"][j], signals["topk_mass"][j] = top1[i], ent[i], topk[i]
    return outcomes, signals


def record_trace(target: Any, drafter: Any, prompts: Iterable[Any], *, max_new_tokens: int = 64,
                 target_tokenizer: Any = None, drafter_tokenizer: Any = None, top_k: int = 10,
                 rule: str = "auto", progress: bool = True, out: str | os.PathLike | None = None,
                 corpus: str | None = None, temperature: float | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Per-position outcomes and drafter signals along the target's greedy output, one record per prompt.

    ``target``, ``drafter``: :class:`~simspec.real.LoadedModel`\\ s, specs for
    :func:`~simspec.real.load_model` or torch causal LMs (then give the tokenizers, or prompts
    as token-id lists).  ``prompts``: strings, ``(id, text)`` pairs / :class:`Prompt`\\ s (e.g.
    :func:`~simspec.real.builtin_prompts`) or token-id lists.  ``rule``: ``"token-id"``,
    ``"string"`` or ``"auto"`` (token ids when the tokenizers have the same vocabulary, else
    strings; see the module docstring).  ``temperature``: record sampled speculative decoding
    at that temperature instead of greedy (outcomes drawn with ``seed``; with two vocabularies,
    TLI's draft).  ``out`` writes the trace file (``.jsonl``, atomically) with its provenance.
    Records are dicts of the trace format.
    """
    require_models()
    import torch

    target, drafter = as_loaded(target, target_tokenizer), as_loaded(drafter, drafter_tokenizer)
    max_new_tokens = int_at_least("max_new_tokens", max_new_tokens, 1)
    top_k = int_at_least("top_k", top_k, 1)
    if out is not None:
        check_output_path(out, ".jsonl")
    if rule == "auto":
        rule = "token-id" if same_vocabulary(target.tokenizer, drafter.tokenizer) else "string"
    if rule not in ("token-id", "string"):
        raise InvalidParameterError(f"rule must be 'auto', 'token-id' or 'string', got {rule!r}")
    if temperature is not None:
        if not (isinstance(temperature, (int, float)) and temperature > 0 and temperature < float("inf")):
            raise InvalidParameterError(f"temperature must be a number > 0 (or None for greedy), got {temperature!r}")
    import numpy as np

    rng = np.random.default_rng(seed)
    if rule == "string" and (target.tokenizer is None or drafter.tokenizer is None):
        raise InvalidParameterError("the string rule needs both tokenizers: give target_tokenizer and "
                                    "drafter_tokenizer")
    items = _prompts(prompts)
    records = []
    d2t = None
    bar = progress_bar(len(items), "record", progress)
    with torch.inference_mode():
        for pid, prompt in items:
            if isinstance(prompt, str):
                if target.tokenizer is None:
                    raise InvalidParameterError(f"prompt {pid} is text but the target has no tokenizer; give "
                                                "target_tokenizer or token ids")
                ids = _encode(target.tokenizer, prompt, True)
            else:
                if rule == "string":
                    raise InvalidParameterError(f"prompt {pid} is token ids; the string rule needs text prompts")
                ids = prompt
            if not ids:
                raise InvalidParameterError(f"prompt {pid} has no tokens")
            if temperature is not None and rule == "string":
                if d2t is None:
                    d2t = token_intersection(target, drafter)
                    if not (d2t >= 0).any():
                        raise VocabularyError("the two vocabularies share no token text: TLI has nothing to draft")
                outcomes, signals = _sampled_tli(target, drafter, prompt, top_k, max_new_tokens, temperature, rng, d2t)
            elif temperature is not None:
                outcomes, signals = _sampled(target, drafter, ids, top_k, max_new_tokens, temperature, rng)
            elif rule == "token-id":
                outcomes, signals = _by_id(target, drafter, ids, top_k, max_new_tokens)
            else:
                outcomes, signals = _by_string(target, drafter, prompt, top_k, max_new_tokens)
            records.append({"prompt": pid, "prompt_len": len(ids), "outcomes": outcomes, "signals": signals})
            bar.update()
    bar.close()
    if out is not None:
        prov = trace_provenance(target, drafter, rule, top_k, max_new_tokens, corpus)
        if temperature is not None and rule == "string":
            prov.update(temperature=float(temperature), seed=seed,
                        generation=f"target sampled at temperature {temperature:g} (no top-k, no top-p), "
                                   f"max_new_tokens {max_new_tokens}",
                        outcome_rule=("sampled, two vocabularies (TLI): at each target token that starts where a "
                                      "drafter token starts, outcome ~ Bernoulli(alpha), alpha = sum over the "
                                      "intersection I of min(p(t), q(t)/q(I)) at the temperature; I = token texts "
                                      "equal and unique in both vocabularies; null elsewhere"),
                        signals=f"drafter softmax at temperature {temperature:g}: top1_prob, entropy (nats), "
                                "topk_mass; acceptance_rate")
        elif temperature is not None:
            prov.update(temperature=float(temperature), seed=seed,
                        generation=f"target sampled at temperature {temperature:g} (no top-k, no top-p), "
                                   f"max_new_tokens {max_new_tokens}",
                        outcome_rule="sampled: outcome j ~ Bernoulli(alpha_j), alpha_j = sum_x min(p_j(x), q_j(x)) "
                                     "at the temperature (speculative sampling); alpha_j in the acceptance_rate signal",
                        signals=f"drafter softmax at temperature {temperature:g}: top1_prob, entropy (nats), "
                                "topk_mass; acceptance_rate")
        write_trace(out, records, prov)
    return records


def trace_provenance(target: LoadedModel, drafter: LoadedModel, rule: str, top_k: int, max_new_tokens: int,
                     corpus: str | None = None) -> dict[str, Any]:
    import torch

    rules = {
        "token-id": "token-id: drafter argmax id == target token id (one shared vocabulary)",
        "string": ("string: the drafter, teacher-forced on the target's output text re-tokenised with its own "
                   "tokenizer, proposes at a token boundary it shares with the target; 1 iff the proposal's text "
                   "equals the target token's text, null where no drafter token starts at the target token"),
    }
    tok = lambda m: getattr(m.tokenizer, "name_or_path", None) or type(m.tokenizer).__name__  # noqa: E731
    return {
        "target": f"{target.name} ({target.source})" if target.source else target.name,
        "drafter": f"{drafter.name} ({drafter.source})" if drafter.source else drafter.name,
        "target_tokenizer": tok(target), "drafter_tokenizer": tok(drafter),
        "outcome_rule": rules[rule], "corpus": corpus or "given prompts",
        "temperature": 0, "generation": f"target greedy, max_new_tokens {max_new_tokens}", "top_k": top_k,
        "signals": "drafter softmax at temperature 1: top1_prob, entropy (nats), topk_mass",
        "versions": {**versions(), "python": platform.python_version()},
        "device": str(target.device), "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_trace(path: str | os.PathLike, records: Sequence[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Write a per-position acceptance trace (JSON lines), atomically, with :func:`simspec.traces.write_acceptance_trace`.

    The format needs at least one observed position per prompt: a record whose outcomes are
    all ``null`` (possible under the string rule) is left out, and the provenance names it.
    """
    from ..traces import write_acceptance_trace

    path = check_output_path(path, ".jsonl")
    kept = [r for r in records if any(o is not None for o in r["outcomes"])]
    if len(kept) < len(records):
        provenance = {**provenance, "left_out": "prompts without an observed position: "
                      + ", ".join(r["prompt"] for r in records if r not in kept)}
    if not kept:
        raise InvalidParameterError("no prompt has an observed position: nothing to write (try more prompts or "
                                    "--max-new-tokens)")
    return write_acceptance_trace(path, kept, provenance)
