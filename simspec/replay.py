"""Price recorded SI rounds forward by forward: the predicted wall time of each recorded prompt.

:func:`replay_rounds` takes a :class:`~simspec.traces.RoundTrace` (what a real
assisted-generation run did, round by round) and latency models of the target
and the drafter (any :class:`~simspec.latency.LatencyModel`: constant, affine,
a measured profile — only ``forward(n_new, context_len, phase)`` is called),
and adds up, per prompt, in the order the forwards happen:

* **Round i** with ``k`` drafted, ``n`` accepted, ``f`` drafter forwards, after
  ``L`` tokens emitted: ``f`` drafter forwards at contexts ``p + L − 1 + j``
  (``j = 0..f−1``; ``p`` the prompt length) — of width 1, or of the recorded
  ``drafter_widths`` (a re-tokenised drafter's catch-up forward is wider; its
  context is still counted in target tokens) —, then one target
  verification of width ``k + 1`` at context ``p + L − 1`` (the cache holds the
  prompt and every emitted token but the newest, which the forward feeds), then
  the loop's overheads: ``per_round_ms`` + ``per_draft_token_ms·k`` +
  ``per_drafter_forward_ms·f`` + ``per_emitted_token_ms·(n + 1)``.  The round
  emits ``n + 1`` tokens; a zero-candidate round (``k = 0``) is a plain target
  forward of width 1 that emits one.
* **Prefills, as assisted generation runs them** (transformers'
  ``assisted_decoding``): the drafter's first forward is its prefill — width
  ``p + L`` (the prompt, and any tokens emitted before the drafter first ran;
  or its recorded width, the prompt in the drafter's own tokens) at context 0,
  phase ``"prefill"`` — and yields the first draft; the first
  verification is merged into the target's prefill: one forward of width
  ``p + k`` at context 0, phase ``"prefill"``, which emits the first round's
  ``n + 1`` tokens.  Time to first token is the end of the first round.
* **Plain decoding of the same prompt** (the baseline): the target's prefill
  (width ``p``, phase ``"prefill"``) emits the first token, then ``T − 1``
  decode forwards of width 1 at contexts ``p .. p + T − 2``, plus
  ``per_emitted_token_ms·T`` (the only overhead plain decoding pays), where
  ``T = Σ (n + 1)`` is the number of tokens the recorded rounds emitted.

The overheads come from any object with the attributes ``per_round_ms``,
``per_draft_token_ms``, ``per_drafter_forward_ms`` and ``per_emitted_token_ms``
(:class:`simspec.deployment.Overheads` carries them; a missing one counts 0).
The predicted speedup is plain time over speculative time, with a 95% interval
over prompts (the independent units).

>>> from simspec import ConstantLatency
>>> from simspec.traces import RoundTrace
>>> rt = RoundTrace.from_rows([{"prompt": "a", "prompt_len": 4, "drafted": 2, "accepted": 2},
...                            {"prompt": "a", "prompt_len": 4, "drafted": 2, "accepted": 0}])
>>> res = replay_rounds(rt, ConstantLatency(10.0, ttft_ms=20.0), ConstantLatency(1.0, ttft_ms=2.0))
>>> row = res.rows[0]
>>> row.tokens, row.speculative_ms, row.plain_ms     # (2 + 1 + 20) + (2 + 10); 20 + 3 * 10
(4, 35.0, 50.0)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import InvalidParameterError
from .latency import LatencyModel, check_latency_model
from .records import Estimate, TableRecord, to_frame
from .traces import PromptRounds, RoundTrace, load_round_trace

__all__ = ["OVERHEAD_FIELDS", "PromptReplay", "ReplayResult", "replay_rounds", "plain_decoding_ms"]

#: The overheads replay reads (``getattr(overheads, name, 0.0)``), in ms per unit.
OVERHEAD_FIELDS = ("per_round_ms", "per_draft_token_ms", "per_drafter_forward_ms", "per_emitted_token_ms")

#: Prompts the printed table lists before it summarises the rest.
_SHOWN = 20


@dataclass(frozen=True)
class PromptReplay:
    """One recorded prompt, replayed: its rounds and the predicted times (ms)."""

    prompt: str
    prompt_len: int
    rounds: int
    tokens: int
    drafted: int
    accepted: int
    drafter_forwards: int
    speculative_ms: float
    speculative_ttft_ms: float
    plain_ms: float
    plain_ttft_ms: float

    @property
    def speedup(self) -> float:
        return self.plain_ms / self.speculative_ms

    @property
    def tokens_per_round(self) -> float:
        return self.tokens / self.rounds

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(speedup=self.speedup, tokens_per_round=self.tokens_per_round,
                 speculative_latency_per_token_ms=self.speculative_ms / self.tokens,
                 plain_latency_per_token_ms=self.plain_ms / self.tokens)
        return d


@dataclass(frozen=True)
class ReplayResult(TableRecord):
    """The recorded prompts replayed: one :class:`PromptReplay` per prompt, and the totals.

    ``speedup`` is the predicted speedup of the recorded speculative run over
    plain decoding (total plain time / total speculative time), with a 95%
    interval over prompts; ``to_frame()`` is one row per prompt.
    """

    rows: tuple[PromptReplay, ...]
    overheads: Mapping[str, float] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rows)

    @property
    def speculative_ms(self) -> float:
        return float(sum(r.speculative_ms for r in self.rows))

    @property
    def plain_ms(self) -> float:
        return float(sum(r.plain_ms for r in self.rows))

    @property
    def speedup(self) -> Estimate:
        plain = [r.plain_ms for r in self.rows]
        spec = [r.speculative_ms for r in self.rows]
        if len(self.rows) == 1:
            return Estimate.exact(plain[0] / spec[0], "x")
        return Estimate.ratio(plain, spec)

    def to_records(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        s = self.speedup
        return {"prompts": len(self.rows), "tokens": self.tokens, "speculative_ms": self.speculative_ms,
                "plain_ms": self.plain_ms, "speedup": s.mean,
                **({"speedup_ci": [s.low, s.high]} if s.n > 1 else {}),
                "overheads": dict(self.overheads), "rows": self.to_records()}

    def to_frame(self):
        """One row per prompt (needs pandas)."""
        return to_frame(self.to_records())

    def _table(self):
        head = (f"replay of {len(self.rows)} recorded prompt(s), {self.tokens} tokens: predicted speedup "
                f"{self.speedup} over plain decoding")
        headers = ["tokens", "rounds", "tokens/round", "spec ms", "plain ms", "speedup"]
        shown = self.rows[:_SHOWN]
        rows = [(r.prompt, [r.tokens, r.rounds, r.tokens_per_round, r.speculative_ms, r.plain_ms, r.speedup])
                for r in shown]
        rounds = sum(r.rounds for r in self.rows)
        rows.append(("all prompts", [self.tokens, rounds, self.tokens / rounds, self.speculative_ms, self.plain_ms,
                                     self.plain_ms / self.speculative_ms]))
        notes = []
        if len(self.rows) > _SHOWN:
            notes.append(f"({len(self.rows) - _SHOWN} more prompts in to_frame())")
        if len(self.rows) > 1:
            notes.append(f"(± is the 95% CI over the {len(self.rows)} prompts)")
        return head, headers, rows, notes


def _overhead_values(overheads) -> dict[str, float]:
    out = {}
    for name in OVERHEAD_FIELDS:
        v = float(getattr(overheads, name, 0.0) or 0.0) if overheads is not None else 0.0
        if not np.isfinite(v) or v < 0:
            raise InvalidParameterError(f"overheads.{name} must be a finite number of ms >= 0, got {v!r}")
        out[name] = v
    return out


class _Clock:
    """Sums one model's forwards; a context-independent model is asked once per distinct width."""

    def __init__(self, model: LatencyModel) -> None:
        self.model = model
        self.by_context = bool(getattr(model, "context_dependent", True))
        self.cache: dict[int, float] = {}

    def decode(self, width: int, context: int) -> float:
        if self.by_context:
            return float(self.model.forward(width, context, "decode"))
        v = self.cache.get(width)
        if v is None:
            v = self.cache[width] = float(self.model.forward(width, 0, "decode"))
        return v

    def prefill(self, width: int) -> float:
        return float(self.model.forward(width, 0, "prefill"))


def plain_decoding_ms(target: LatencyModel, prompt_len: int, tokens: int, per_emitted_token_ms: float = 0.0) -> float:
    """Plain decoding of ``tokens`` tokens after a prompt of ``prompt_len``: prefill, then width-1 forwards.

    >>> from simspec import AffineLatency
    >>> plain_decoding_ms(AffineLatency(10.0, 1.0, ttft_ms=50.0, per_context_token_ms=0.5), 4, 3)
    74.5
    """
    clock = _Clock(check_latency_model("target", target))
    total = clock.prefill(prompt_len)
    if clock.by_context:
        total += sum(clock.decode(1, prompt_len + m - 1) for m in range(1, tokens))
    else:
        total += (tokens - 1) * clock.decode(1, 0)
    return total + per_emitted_token_ms * tokens


def _replay_prompt(p: PromptRounds, plen: int, target: _Clock, drafter: _Clock, oh: Mapping[str, float]):
    emitted = 0
    t = 0.0
    ttft = None
    drafter_started = target_started = False
    for i, (k, n, f) in enumerate(zip(p.drafted, p.accepted, p.drafter_forwards)):
        recorded = p.drafter_widths[i] if p.drafter_widths is not None else None
        for j in range(f):
            if not drafter_started:
                t += drafter.prefill(recorded[j] if recorded is not None else plen + emitted)
                drafter_started = True
            else:
                t += drafter.decode(recorded[j] if recorded is not None else 1, plen + emitted - 1 + j)
        if not target_started:
            t += target.prefill(plen + k)
            target_started = True
        else:
            t += target.decode(k + 1, plen + emitted - 1)
        t += (oh["per_round_ms"] + oh["per_draft_token_ms"] * k + oh["per_drafter_forward_ms"] * f
              + oh["per_emitted_token_ms"] * (n + 1))
        emitted += n + 1
        if ttft is None:
            ttft = t
    return t, float(ttft)


def replay_rounds(trace: RoundTrace | str | os.PathLike, target: LatencyModel, drafter: LatencyModel,
                  overheads=None, *, prompt_len: int | None = None) -> ReplayResult:
    """The predicted wall time of each recorded prompt, speculative and plain (see the module docstring).

    ``trace``: a :class:`~simspec.traces.RoundTrace` or the path of a per-round
    trace; ``prompt_len``: the prompt length for prompts whose rows lack one
    (an error names the prompt otherwise).  Returns a :class:`ReplayResult`.
    """
    if not isinstance(trace, RoundTrace):
        trace = load_round_trace(trace)
    tclock = _Clock(check_latency_model("target", target))
    dclock = _Clock(check_latency_model("drafter", drafter))
    oh = _overhead_values(overheads)
    rows = []
    for p in trace.prompts:
        plen = p.prompt_len if p.prompt_len is not None else prompt_len
        if plen is None:
            raise InvalidParameterError(
                f"prompt {p.prompt!r} has no prompt_len in the trace; pass replay_rounds(..., prompt_len=...)")
        if isinstance(plen, bool) or int(plen) != plen or plen < 1:
            raise InvalidParameterError(
                f"prompt {p.prompt!r}: prompt_len must be an integer >= 1 (a prefill processes at least one "
                f"token), got {plen!r}")
        plen = int(plen)
        spec, ttft = _replay_prompt(p, plen, tclock, dclock, oh)
        plain = plain_decoding_ms(target, plen, p.tokens, oh["per_emitted_token_ms"])
        plain_ttft = tclock.prefill(plen) + oh["per_emitted_token_ms"]
        rows.append(PromptReplay(p.prompt, plen, p.rounds, p.tokens, sum(p.drafted), sum(p.accepted),
                                 sum(p.drafter_forwards), spec, ttft, plain, plain_ttft))
    return ReplayResult(tuple(rows), oh, dict(trace.provenance))
