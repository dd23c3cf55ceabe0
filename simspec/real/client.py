"""The rounds of transformers' own ``generate`` loop for one setting, found without running the target.

transformers' assisted generation (``generate(assistant_model=...)``, with one vocabulary or two —
universal assisted generation, whose rounds follow a re-tokenisation rule — and prompt lookup,
``prompt_lookup_num_tokens=``) runs rounds: a candidate generator proposes, one target forward
verifies, the target's greedy tokens decide how many proposals are kept.  Greedy assisted
generation emits exactly the target's greedy output, so the verification can be read off that
output instead of being computed.  :func:`client_rounds` does just that:

* it calls the target's ``generate`` with the very arguments a real run gets
  (:func:`generate_kwargs`, shared with :func:`~simspec.real.measure_overheads`), so that
  transformers prepares its generation config, logits processors and stopping criteria as it
  would, and builds *its own* candidate generator (``_get_candidate_generator``) — the drafter
  model really runs, through transformers' code, with its real cache and re-tokenisation;
* the decoding loop itself is replaced (``generate(custom_generate=...)``, a public hook) by one
  that follows transformers' ``_assisted_decoding`` (read in transformers 5.24) round by round —
  fetch candidates, keep the longest prefix equal to the target's greedy tokens plus one, cut at
  ``max_length`` and at EOS, update the candidate strategy, stop on the stopping criteria, carry the
  ``"heuristic"`` lookahead to the assistant's generation config — except that the target's tokens
  come from its greedy output, computed once by plain decoding (or passed as ``target_output``);
* every drafter forward is logged with its width, so that each round carries the drafter's real
  work: ``drafter_forwards`` and ``drafter_widths`` (a round's first drafter forward feeds every
  token its cache lacks: the re-tokenised catch-up is wider than 1).

The result is a per-round trace (``docs/guides/real-traces.md``) that
:func:`simspec.replay.replay_rounds` prices forward by forward.  The drafter costs what it costs
in the real run; the target costs nothing beyond one plain decoding of each prompt.
``tests/test_real_client.py`` checks the rounds against instrumented real ``generate`` runs on tiny
models, with one shared vocabulary and with two different tokenizers.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

from .._checks import int_at_least
from ..errors import InvalidParameterError
from . import require_models
from .models import LoadedModel, as_loaded

__all__ = ["client_rounds", "generate_kwargs", "setting_name", "check_setting", "SCHEDULES"]

#: ``num_assistant_tokens_schedule`` values transformers accepts for an assistant model.
SCHEDULES = ("constant", "heuristic", "heuristic_transient")


def setting_name(setting: Mapping[str, Any]) -> str:
    """``plain``, ``prompt_lookup-k3``, ``assisted-k5``, ``assisted-heuristic-k20``, ``assisted-k20-t0.4`` …"""
    name = setting["mode"]
    if setting.get("schedule", "constant") != "constant":
        name += f"-{setting['schedule']}"
    if "k" in setting:
        name += f"-k{setting['k']}"
    if setting.get("confidence_threshold") is not None:
        name += f"-t{setting['confidence_threshold']:g}"
    return setting.get("name", name)


def check_setting(setting: Mapping[str, Any], has_drafter: bool) -> None:
    """A clear error for a setting :func:`generate_kwargs` cannot run."""
    if not isinstance(setting, Mapping) or setting.get("mode") not in ("plain", "assisted", "prompt_lookup"):
        raise InvalidParameterError(f"setting {setting!r} needs mode 'plain', 'assisted' or 'prompt_lookup'")
    if setting["mode"] == "assisted" and not has_drafter:
        raise InvalidParameterError(f"setting {setting_name(setting)} ('assisted') needs a drafter model")
    if setting["mode"] != "plain":
        int_at_least(f"k of setting {setting_name(setting)}", setting.get("k"), 1)
    if setting.get("schedule", "constant") not in SCHEDULES:
        raise InvalidParameterError(f"setting {setting_name(setting)}: schedule must be one of {SCHEDULES}, "
                                    f"got {setting['schedule']!r}")
    theta = setting.get("confidence_threshold")
    if theta is not None and not 0 <= theta <= 1:
        raise InvalidParameterError(f"setting {setting_name(setting)}: confidence_threshold must be in [0, 1] "
                                    f"(0 turns the stop off), got {theta!r}")


def generate_kwargs(target: LoadedModel, drafter: LoadedModel | None, setting: Mapping[str, Any], x: Any,
                    max_new_tokens: int, shared_vocabulary: bool) -> dict[str, Any]:
    """The ``generate`` arguments of one greedy run of ``setting`` — the one definition of a run.

    ``setting``: ``{"mode": "plain" | "assisted" | "prompt_lookup", "k": …, "schedule": …,
    "confidence_threshold": …}``.  An assisted setting writes ``k`` (``num_assistant_tokens``),
    the schedule (default ``"constant"``) and, when given, the threshold into the drafter's
    generation config, so every run starts from them: a ``"heuristic"`` lookahead does not carry
    from one run to the next.
    """
    import torch

    kwargs: dict[str, Any] = {"max_new_tokens": int(max_new_tokens), "do_sample": False,
                              "attention_mask": torch.ones_like(x)}
    if target.model.generation_config.pad_token_id is None:
        kwargs["pad_token_id"] = target.model.generation_config.eos_token_id or 0
    if setting["mode"] == "assisted":
        cfg = drafter.model.generation_config
        cfg.num_assistant_tokens = int(setting["k"])
        cfg.num_assistant_tokens_schedule = setting.get("schedule", "constant")
        if setting.get("confidence_threshold") is not None:
            cfg.assistant_confidence_threshold = float(setting["confidence_threshold"])
        kwargs["assistant_model"] = drafter.model
        if not shared_vocabulary:
            kwargs.update(tokenizer=target.tokenizer, assistant_tokenizer=drafter.tokenizer)
    elif setting["mode"] == "prompt_lookup":
        kwargs["prompt_lookup_num_tokens"] = int(setting["k"])
    return kwargs


def _oracle_decoding(known: Sequence[int], rounds: list, log: list, generate_args: Mapping[str, Any]):
    """A ``custom_generate`` that runs transformers' candidate generator against the known greedy tokens."""
    import torch

    # ``generate`` does not hand a custom loop the assistant model and the tokenizers (it pops them
    # before it looks at the loop's signature): they come from the closure
    assistant_model = generate_args.get("assistant_model")
    tokenizer, assistant_tokenizer = generate_args.get("tokenizer"), generate_args.get("assistant_tokenizer")

    def decode(model, input_ids, logits_processor, stopping_criteria, generation_config, inputs_tensor=None,
               **kwargs):
        for unused in ("streamer", "synced_gpus", "assistant_model", "tokenizer", "assistant_tokenizer"):
            kwargs.pop(unused, None)
        generator = model._get_candidate_generator(
            generation_config=generation_config, input_ids=input_ids, inputs_tensor=inputs_tensor,
            assistant_model=assistant_model, logits_processor=logits_processor, target_tokenizer=tokenizer,
            assistant_tokenizer=assistant_tokenizer, model_kwargs=kwargs)
        if getattr(generator, "requires_model_outputs", False):
            raise InvalidParameterError(f"{type(generator).__name__} needs the target's hidden states: not replayable")
        eos = getattr(generation_config, "_eos_token_tensor", None)
        eos_ids = set() if eos is None else {int(t) for t in eos.reshape(-1).tolist()}
        prompt_len = input_ids.shape[1]
        while True:
            cur_len = input_ids.shape[1]
            k_in_force = getattr(generator, "num_assistant_tokens", None)
            before = len(log)
            candidate_ids, _ = generator.get_candidates(input_ids)
            widths = [w for _, w, _ in log[before:]]
            candidates = candidate_ids[0, cur_len:].tolist()
            width = len(candidates)
            selected = list(known[cur_len:cur_len + width + 1])
            matches = 0
            while matches < width and matches < len(selected) and candidates[matches] == selected[matches]:
                matches += 1
            budget = generation_config.max_length - cur_len
            valid = selected[:min(matches + 1, budget)]
            if len(valid) < min(matches + 1, budget) and not eos_ids.intersection(valid):
                raise InvalidParameterError(
                    f"the target's greedy output ends at {len(known) - prompt_len} new tokens, before this run "
                    f"does: give target_output at least max_new_tokens tokens")
            hit = [i for i, t in enumerate(valid) if t in eos_ids]
            if hit:
                valid = valid[:hit[0] + 1]
            matches = len(valid) - 1
            input_ids = torch.cat([input_ids, torch.tensor([valid], dtype=input_ids.dtype)], dim=-1)
            # only the shape of the scores is read (len(scores[0]) - 1 = the number of candidates)
            generator.update_candidate_strategy(input_ids, torch.zeros(1, width + 1, 1), matches)
            rounds.append({"round": len(rounds), "drafted": width, "accepted": matches,
                           "drafter_forwards": len(widths), "drafter_widths": widths,
                           **({"k": int(k_in_force), "k_next": int(generator.num_assistant_tokens)}
                              if k_in_force is not None else {})})
            if bool(stopping_criteria(input_ids, None).all()):
                break
        assistant = getattr(generator, "assistant_model", None)
        if assistant is not None and assistant.generation_config.num_assistant_tokens_schedule == "heuristic":
            assistant.generation_config.num_assistant_tokens = generator.num_assistant_tokens
        return input_ids

    return decode


def _greedy(target: LoadedModel, ids: list[int], max_new_tokens: int) -> list[int]:
    import torch

    x = torch.tensor([ids], device=target.device)
    out = target.model.generate(x, **generate_kwargs(target, None, {"mode": "plain"}, x, max_new_tokens, True))
    return out[0].tolist()


def client_rounds(target: Any, drafter: Any | None, prompt_ids: Sequence[int], setting: Mapping[str, Any], *,
                  max_new_tokens: int, target_output: Sequence[int] | None = None,
                  prompt: str = "0") -> list[dict[str, Any]]:
    """The rounds ``target.generate`` runs for ``setting`` on one prompt, with the drafter run for real.

    ``prompt_ids``: the prompt in the target's tokens; ``setting``: see :func:`generate_kwargs`
    (``"assisted"`` or ``"prompt_lookup"``); ``target_output``: the target's greedy new tokens
    (at least ``max_new_tokens`` of them, or up to its EOS) — computed here by plain decoding when
    not given.  Returns per-round trace rows ``{"prompt", "prompt_len", "round", "drafted",
    "accepted", "drafter_forwards", "drafter_widths"[, "k", "k_next"]}`` (``drafted`` in target
    tokens; a round that found no candidate drafts 0 and may still have run the drafter).
    """
    require_models()
    import torch
    import transformers

    from .overheads import _Timed
    from .record import same_vocabulary

    target = as_loaded(target)
    drafter = as_loaded(drafter) if drafter is not None else None
    check_setting(setting, drafter is not None)
    if setting["mode"] == "plain":
        raise InvalidParameterError("plain decoding has no rounds: give an 'assisted' or 'prompt_lookup' setting")
    n_new = int_at_least("max_new_tokens", max_new_tokens, 1)
    ids = [int(t) for t in prompt_ids]
    if not ids:
        raise InvalidParameterError(f"prompt {prompt!r} is empty: a prompt needs at least one token")
    shared = drafter is None or same_vocabulary(target.tokenizer, drafter.tokenizer)
    if not shared and (target.tokenizer is None or drafter.tokenizer is None):
        raise InvalidParameterError("a target and a drafter with different vocabularies both need tokenizers")
    rounds: list[dict[str, Any]] = []
    log: list = []
    saved = copy.deepcopy(drafter.model.generation_config) if drafter is not None else None
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the assistant's generate call warns about its own arguments
    try:
        with torch.inference_mode():
            known = ids + [int(t) for t in (target_output if target_output is not None
                                            else _greedy(target, ids, n_new)[len(ids):])]
            x = torch.tensor([ids], device=target.device)
            kwargs = generate_kwargs(target, drafter, setting, x, n_new, shared)
            timed = _Timed(drafter.model, log, "drafter", lambda: None) if drafter is not None else None
            if timed is not None:
                timed.__enter__()
            try:
                target.model.generate(x, custom_generate=_oracle_decoding(known, rounds, log, kwargs),
                                      **kwargs)
            finally:
                if timed is not None:
                    timed.__exit__(None, None, None)
    finally:
        transformers.logging.set_verbosity(verbosity)
        if drafter is not None:
            drafter.model.generation_config = saved
    return [{"prompt": prompt, "prompt_len": len(ids), **r} for r in rounds]
