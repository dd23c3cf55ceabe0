"""Import what serving engines log about speculative decoding into an acceptance process.

A server that runs speculative decoding logs how many drafts it proposed and
how many the target accepted.  :func:`from_engine_metrics` reads those logs and
returns an acceptance process, so that every simspec engine can answer "what if
the lookahead were 2 instead of 4" for that server's traffic:

* **vLLM** (v1 engine), Prometheus text exposition of ``/metrics``: the counters
  ``vllm:spec_decode_num_drafts``, ``vllm:spec_decode_num_draft_tokens``,
  ``vllm:spec_decode_num_accepted_tokens`` and
  ``vllm:spec_decode_num_accepted_tokens_per_pos{position="0"}``, ... (with or
  without the ``_total`` suffix; ``_created`` samples, other metrics and other
  labels are ignored; samples of the same counter and position are summed over
  their other labels).  Also vLLM's per-request speculative-decoding JSON
  (``metrics.speculative_decoding``): ``num_spec_steps``, ``num_draft_tokens``,
  ``num_accepted_draft_tokens``, ``acceptance_histogram`` (accepted drafts of a
  step → steps), ``mean_acceptance_length`` — one object, a list, or JSON lines
  (summed over requests).
* **SGLang**: the gauge ``sglang:spec_accept_length`` (Prometheus text; averaged
  over its label sets) or the scheduler's decode log lines ``Decode batch. ...
  accept len: 3.21, ...`` (the unweighted mean of the lines).  Both are mean
  tokens per verification *including* the bonus token; ``k`` (the server's
  ``--speculative-num-steps``, chain drafting with ``--speculative-eagle-topk 1``)
  must be given.
* **llama.cpp**: ``llama-server``'s response ``timings`` (``draft_n``,
  ``draft_n_accepted``; one response, a list or JSON lines), its log line
  ``draft acceptance rate = 0.58824 (   10 accepted /    17 generated)``, or
  ``llama-speculative``'s summary (``n_draft   = 16``, ``n_drafted = ...``,
  ``n_accept  = ...``).  llama.cpp logs no count of rounds: simspec assumes every
  round drafted ``k`` tokens (``k`` = ``n_draft`` of the summary, or the server's
  ``--draft-max`` given as ``k``), so rounds = drafted / ``k``; drafts cut short by
  ``--draft-p-min`` make this an approximation.
* **TensorRT-LLM**: iteration statistics (``trtllm-serve``'s ``/metrics`` JSON, or
  ``LLM.get_stats()``), each with ``specDecodingStats``: ``numDraftTokens``,
  ``numAcceptedTokens``, ``numRequestsWithDraftTokens`` (one round per request and
  iteration), ``acceptanceLength``, ``iterLatencyMS``, ``draftOverhead`` (summed over
  iterations with drafts; the timings are kept in :attr:`EngineMetrics.extra`).

**The output.**  Per-position counts (vLLM's counters or its histogram) give a
:class:`~simspec.acceptance.PositionalAcceptance` with ``α_1 = c_0/drafts`` and
``α_j = c_{j−1}/c_{j−2}``, and a geometric tail with ``α_K`` beyond the ``K``
measured positions (an extrapolation).  A mean acceptance length ``τ`` (tokens
per round, bonus included) with a known ``k`` gives the i.i.d. rate ``a`` that
solves ``τ = (1 − a^{k+1})/(1 − a)``
(:func:`simspec.theory.si_acceptance_rate_from_tokens`), as an
:class:`~simspec.acceptance.IIDAcceptance`.

**The approximation.**  A real engine's ``α_j`` is the acceptance of the draft
at position ``j`` *of a round* (every round restarts at position 1 after the
bonus token); simspec's processes define acceptance per position *of the run of
accepted drafts*, which continues across a fully accepted round.  The two agree
on every round that ends in a rejection; after a fully accepted round simspec
continues the run at ``α_{k+1}, α_{k+2}, ...`` (the tail) where the engine
restarts at ``α_1``.  With ``k`` large compared to typical runs, or ``α_j``
nearly flat, the difference is small; replaying at lookaheads near the logged
one is the safe use.

>>> text = '''
... vllm:spec_decode_num_drafts_total{engine="0"} 400
... vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 320
... vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="1"} 260
... vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="2"} 200
... '''
>>> [round(a, 4) for a in from_engine_metrics(text).alphas]
[0.8, 0.8125, 0.7692]
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np

from . import theory
from .acceptance import IIDAcceptance, PositionalAcceptance
from .errors import InvalidParameterError, TraceFormatError
from .io import decoded_lines

__all__ = ["ENGINES", "EngineMetrics", "read_engine_metrics", "from_engine_metrics"]

ENGINES = ("vllm", "sglang", "llamacpp", "trtllm")

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^\s*({_NAME})\s*(\{{.*\}})?\s*([^\s{{}}]+)(\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


@dataclass(frozen=True)
class EngineMetrics:
    """What one engine logged about speculative decoding, summed over what the file holds.

    ``drafts``: rounds that proposed drafts; ``draft_tokens``, ``accepted_tokens``:
    drafts proposed and accepted; ``accepted_at_position``: rounds whose draft at
    position ``i`` (0-based) was accepted; ``mean_acceptance_length``: tokens per
    round, bonus included; ``k``: drafts per round, when known.  ``None``: not logged.
    """

    engine: str
    source: str
    drafts: float | None = None
    draft_tokens: float | None = None
    accepted_tokens: float | None = None
    accepted_at_position: tuple[float, ...] | None = None
    mean_acceptance_length: float | None = None
    k: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def draft_acceptance_rate(self) -> float | None:
        """Accepted over proposed drafts (what dashboards show; not the per-position ``α``)."""
        if self.draft_tokens and self.accepted_tokens is not None:
            return self.accepted_tokens / self.draft_tokens
        return None

    def tokens_per_round(self) -> float | None:
        if self.mean_acceptance_length is not None:
            return self.mean_acceptance_length
        if self.drafts and self.accepted_tokens is not None:
            return 1.0 + self.accepted_tokens / self.drafts
        return None

    def acceptance(self, k: int | None = None) -> PositionalAcceptance | IIDAcceptance:
        """The acceptance process these metrics imply (see the module docstring).

        ``k``: the lookahead the server ran with, needed when only a mean is logged
        and the metrics do not say it.
        """
        if self.accepted_at_position:
            if not self.drafts:
                raise TraceFormatError(f"{self.source}: per-position acceptance counts but no count of drafts "
                                       f"(rounds) to divide by; {self._drafts_field()} is missing or 0")
            try:
                return PositionalAcceptance.from_counts(self.drafts, self.accepted_at_position)
            except InvalidParameterError as exc:
                raise TraceFormatError(f"{self.source}: inconsistent counters: {exc}") from None
        k = self._k(k)
        if self.mean_acceptance_length is None and self.drafts is None and self.draft_tokens:
            if self.accepted_tokens is None:
                raise TraceFormatError(f"{self.source}: no count of accepted drafts")
            if k is None:
                raise InvalidParameterError(
                    f"{self.source}: the {self.engine} metrics count drafts ({self.draft_tokens:g}) and accepted "
                    f"drafts ({self.accepted_tokens:g}) but not rounds; pass k= (the drafts per round, e.g. "
                    "llama.cpp's --draft-max): simspec takes rounds = drafts / k")
            tau = 1.0 + self.accepted_tokens * k / self.draft_tokens  # rounds = drafted / k
        else:
            tau = self.tokens_per_round()
        if tau is None:
            raise TraceFormatError(
                f"{self.source}: {self.engine} metrics without per-position counts, a mean acceptance length or "
                "counts of drafts and accepted drafts; nothing to fit")
        if k is None:
            raise InvalidParameterError(
                f"{self.source}: the {self.engine} metrics give {tau:.4g} tokens per round but not the lookahead "
                "k the server ran with; pass k= (vLLM num_speculative_tokens, SGLang --speculative-num-steps, "
                "llama.cpp --draft-max)")
        if not 1.0 - 1e-9 <= tau <= k + 1 + 1e-9:
            raise InvalidParameterError(
                f"{self.source}: {tau:.4g} tokens per round is impossible with k = {k} (it lies in [1, k + 1]); "
                "check k")
        return IIDAcceptance(float(theory.si_acceptance_rate_from_tokens(min(max(tau, 1.0), k + 1.0), k)))

    def _drafts_field(self) -> str:
        return {"vllm": "vllm:spec_decode_num_drafts (or num_spec_steps)",
                "trtllm": "numRequestsWithDraftTokens"}.get(self.engine, "the count of rounds")

    def _k(self, k: int | None) -> int | None:
        if k is not None:
            if isinstance(k, bool) or int(k) != k or k < 1:
                raise InvalidParameterError(f"k must be an integer >= 1 (drafts per round), got {k!r}")
            k = int(k)
            if self.k is not None and self.k != k:
                raise InvalidParameterError(
                    f"{self.source}: the metrics say k = {self.k} drafts per round, but k = {k} was given")
            return k
        if self.k is not None:
            return self.k
        if self.drafts and self.draft_tokens:
            ratio = self.draft_tokens / self.drafts
            if abs(ratio - round(ratio)) <= 0.02 * ratio and round(ratio) >= 1:
                return int(round(ratio))
        return None


# -- parsing ---------------------------------------------------------------------------------------

def _text(path_or_text: str | os.PathLike) -> tuple[str, str]:
    """``(text, source name)``: a path is read; a string with a newline or starting with ``{``/``[``/``#`` is text."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text.lstrip()[:1] in ("{", "[", "#")):
        return path_or_text, "<text>"
    path = os.fspath(path_or_text)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise TraceFormatError(f"{path}: no such file (expected engine metrics)") from None
    except IsADirectoryError:
        raise TraceFormatError(f"{path}: is a directory, not a metrics file") from None
    lines = decoded_lines(io.BytesIO(raw), path, "engine metrics are text", TraceFormatError)
    return "\n".join(line for _, line in lines), path


def _prometheus(text: str, source: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample of a Prometheus text exposition."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if " # " in line:  # an OpenMetrics exemplar after the value
            line = line.split(" # ", 1)[0].rstrip()
        m = _SAMPLE.match(line)
        if m is None:
            raise TraceFormatError(f"{source}:{lineno}:1: not a Prometheus sample line "
                                   f"(name{{labels}} value): {raw.strip()[:60]!r}")
        name, labels_text, value_text = m.group(1), m.group(2), m.group(3)
        labels: dict[str, str] = {}
        if labels_text:
            body = labels_text[1:-1]
            pos = 0
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                if lm is None:
                    if body[pos:].strip() in ("", ","):
                        break
                    raise TraceFormatError(f"{source}:{lineno}:{raw.find('{') + pos + 2}: malformed label in "
                                           f"{labels_text[:60]!r}")
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            value = float(value_text)
        except ValueError:
            raise TraceFormatError(f"{source}:{lineno}:{raw.rfind(value_text) + 1}: value {value_text!r} is not "
                                   "a number") from None
        yield name, labels, value


def _counter(samples, base: str) -> tuple[float | None, dict[str, float]]:
    """Sum of a counter's samples (``base`` or ``base_total``), and its sums by ``position`` label."""
    total = None
    by_pos: dict[str, float] = {}
    for name, labels, value in samples:
        if name not in (base, base + "_total"):
            continue
        if "position" in labels:
            by_pos[labels["position"]] = by_pos.get(labels["position"], 0.0) + value
        total = (total or 0.0) + value
    return total, by_pos


def _finite_count(value: float | None, what: str, source: str) -> float | None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise TraceFormatError(f"{source}: {what} = {value!r} is not a count >= 0")
    return value


def _vllm_prometheus(text: str, source: str) -> EngineMetrics:
    samples = list(_prometheus(text, source))
    drafts, _ = _counter(samples, "vllm:spec_decode_num_drafts")
    draft_tokens, _ = _counter(samples, "vllm:spec_decode_num_draft_tokens")
    accepted, _ = _counter(samples, "vllm:spec_decode_num_accepted_tokens")
    _, per_pos = _counter(samples, "vllm:spec_decode_num_accepted_tokens_per_pos")
    if drafts is None:
        raise TraceFormatError(f"{source}: no vllm:spec_decode_num_drafts counter (was the server started with "
                               "speculative decoding, and is this its /metrics output?)")
    counts = None
    if per_pos:
        try:
            positions = sorted(int(p) for p in per_pos)
        except ValueError:
            raise TraceFormatError(f"{source}: a position label of vllm:spec_decode_num_accepted_tokens_per_pos "
                                   f"is not an integer: {sorted(per_pos)}") from None
        if positions != list(range(len(positions))):
            raise TraceFormatError(f"{source}: vllm:spec_decode_num_accepted_tokens_per_pos has positions "
                                   f"{positions}; expected 0, 1, ... with none missing")
        counts = tuple(_finite_count(per_pos[str(p)], f"accepted at position {p}", source) for p in positions)
    return EngineMetrics("vllm", source, _finite_count(drafts, "num_drafts", source),
                         _finite_count(draft_tokens, "num_draft_tokens", source),
                         _finite_count(accepted, "num_accepted_tokens", source), counts,
                         k=len(counts) if counts else None)


def _json_objects(text: str, source: str) -> list[Any]:
    """One JSON document, or JSON lines."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        pass
    except (ValueError, RecursionError) as exc:
        raise TraceFormatError(f"{source}:1:1: unreadable JSON ({exc.__class__.__name__})") from None
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise TraceFormatError(f"{source}:{lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:
            raise TraceFormatError(f"{source}:{lineno}:1: unreadable JSON ({exc.__class__.__name__})") from None
    return out


def _find(obj: Any, keys: tuple[str, ...], depth: int = 0) -> Iterator[dict]:
    """Every dict (at any depth) holding one of ``keys``."""
    if depth > 50:
        return
    if isinstance(obj, dict):
        if any(k in obj for k in keys):
            yield obj
            return
        for v in obj.values():
            yield from _find(v, keys, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            yield from _find(v, keys, depth + 1)


def _num(d: Mapping[str, Any], key: str, source: str, required: bool = False) -> float | None:
    v = d.get(key)
    if v is None:
        if required:
            raise TraceFormatError(f"{source}: an object has no {key!r} field: {json.dumps(d)[:80]}")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise TraceFormatError(f"{source}: {key!r} must be a number >= 0, got {v!r}")
    return float(v)


def _vllm_json(text: str, source: str) -> EngineMetrics:
    keys = ("num_spec_steps", "acceptance_histogram", "mean_acceptance_length")
    found = [d for obj in _json_objects(text, source) for d in _find(obj, keys)]
    if not found:
        raise TraceFormatError(f"{source}: no vLLM speculative-decoding object (with num_spec_steps, "
                               "acceptance_histogram or mean_acceptance_length)")
    steps = drafted = accepted = 0.0
    hist: dict[int, float] = {}
    have_counts = True
    taus = []
    for d in found:
        s = _num(d, "num_spec_steps", source)
        if s is None:
            have_counts = False
            tau = _num(d, "mean_acceptance_length", source, required=True)
            taus.append(tau)
            continue
        steps += s
        drafted += _num(d, "num_draft_tokens", source, required=True)
        accepted += _num(d, "num_accepted_draft_tokens", source, required=True)
        h = d.get("acceptance_histogram")
        if h is not None:
            if not isinstance(h, (dict, list)):
                raise TraceFormatError(f"{source}: acceptance_histogram must map accepted drafts to steps")
            items = h.items() if isinstance(h, dict) else enumerate(h)
            for n, c in items:
                try:
                    n_i = int(n)
                except (TypeError, ValueError):
                    raise TraceFormatError(f"{source}: acceptance_histogram key {n!r} is not a count of accepted "
                                           "drafts") from None
                if n_i < 0 or isinstance(c, bool) or not isinstance(c, (int, float)) or c < 0:
                    raise TraceFormatError(f"{source}: acceptance_histogram entry {n!r}: {c!r} is not a count")
                hist[n_i] = hist.get(n_i, 0.0) + float(c)
    if not have_counts:
        if len(found) > 1:
            raise TraceFormatError(f"{source}: objects without num_spec_steps cannot be pooled (their means have "
                                   "unknown weights); give num_spec_steps or one object")
        return EngineMetrics("vllm", source, mean_acceptance_length=taus[0])
    counts = None
    if hist:
        k = max(hist)
        if drafted and steps:
            k = max(k, int(round(drafted / steps)))
        counts = tuple(sum(c for n, c in hist.items() if n > j) for j in range(k))
        if sum(hist.values()) != steps:
            raise TraceFormatError(f"{source}: acceptance_histogram counts {sum(hist.values()):g} steps but "
                                   f"num_spec_steps is {steps:g}")
    return EngineMetrics("vllm", source, steps, drafted, accepted, counts or None)


def _sglang(text: str, source: str) -> EngineMetrics:
    if "sglang:spec_accept_length" in text:
        values = [v for n, _, v in _prometheus(text, source) if n == "sglang:spec_accept_length"]
        if not values:
            raise TraceFormatError(f"{source}: no sglang:spec_accept_length sample")
        return EngineMetrics("sglang", source, mean_acceptance_length=float(np.mean(values)),
                             extra={"samples": float(len(values))})
    values = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = re.search(r"accept len:\s*([^\s,]+)", line)
        if m:
            try:
                v = float(m.group(1))
            except ValueError:
                v = float("nan")
            if not (math.isfinite(v) and v >= 1):
                raise TraceFormatError(f"{source}:{lineno}:{m.start(1) + 1}: accept len {m.group(1)!r} is not a "
                                       "number >= 1 (tokens per verification, bonus included)")
            values.append(v)
    if not values:
        raise TraceFormatError(f"{source}: no 'sglang:spec_accept_length' gauge and no 'accept len:' log line")
    return EngineMetrics("sglang", source, mean_acceptance_length=float(np.mean(values)),
                         extra={"log_lines": float(len(values))})


def _llamacpp(text: str, source: str) -> EngineMetrics:
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        found = [d for obj in _json_objects(text, source) for d in _find(obj, ("draft_n", "draft_n_accepted"))]
        if not found:
            raise TraceFormatError(f"{source}: no llama.cpp timings with draft_n and draft_n_accepted")
        drafted = sum(_num(d, "draft_n", source, required=True) for d in found)
        accepted = sum(_num(d, "draft_n_accepted", source, required=True) for d in found)
        return EngineMetrics("llamacpp", source, draft_tokens=drafted, accepted_tokens=accepted)
    lines = re.findall(r"draft acceptance rate = [^(]*\(\s*(\d+) accepted /\s*(\d+) generated\)", text)
    if lines:
        return EngineMetrics("llamacpp", source, draft_tokens=float(sum(int(g) for _, g in lines)),
                             accepted_tokens=float(sum(int(a) for a, _ in lines)))
    fields = {}
    for key in ("n_draft", "n_drafted", "n_accept", "n_predict"):
        m = re.search(rf"\b{key}\s*=\s*(\d+)", text)
        if m:
            fields[key] = int(m.group(1))
    for key in ("n_drafted", "n_accept"):
        if key not in fields:
            raise TraceFormatError(f"{source}: no '{key} = ...' line (llama-speculative's summary), no "
                                   "'draft acceptance rate' log line and no draft_n/draft_n_accepted timings")
    return EngineMetrics("llamacpp", source, draft_tokens=float(fields["n_drafted"]),
                         accepted_tokens=float(fields["n_accept"]), k=fields.get("n_draft") or None)


def _trtllm(text: str, source: str) -> EngineMetrics:
    found = [d for obj in _json_objects(text, source) for d in _find(obj, ("specDecodingStats", "numDraftTokens"))]
    stats = [d.get("specDecodingStats", d) for d in found]
    stats = [s for s in stats if isinstance(s, dict)]
    if not stats:
        raise TraceFormatError(f"{source}: no TensorRT-LLM specDecodingStats object")
    drafted = accepted = requests = latency = overhead_w = 0.0
    iters = 0
    for s in stats:
        d = _num(s, "numDraftTokens", source, required=True)
        if not d:
            continue
        iters += 1
        drafted += d
        accepted += _num(s, "numAcceptedTokens", source, required=True)
        r = _num(s, "numRequestsWithDraftTokens", source, required=True)
        requests += r
        latency += _num(s, "iterLatencyMS", source) or 0.0
        overhead_w += (_num(s, "draftOverhead", source) or 0.0)
    if not iters or not requests:
        raise TraceFormatError(f"{source}: no iteration with draft tokens (numDraftTokens > 0 and "
                               "numRequestsWithDraftTokens > 0)")
    extra = {"iterations": float(iters), "mean_draft_iter_latency_ms": latency / iters,
             "mean_draft_overhead": overhead_w / iters}
    return EngineMetrics("trtllm", source, requests, drafted, accepted, extra=extra)


def _detect(text: str, source: str) -> str:
    if "vllm:spec_decode" in text:
        return "vllm"
    if "sglang:spec_accept_length" in text or "accept len:" in text:
        return "sglang"
    if "specDecodingStats" in text or "numDraftTokens" in text:
        return "trtllm"
    if "draft_n" in text or "draft acceptance rate" in text or re.search(r"\bn_accept\s*=", text):
        return "llamacpp"
    if "num_spec_steps" in text or "acceptance_histogram" in text or "mean_acceptance_length" in text:
        return "vllm"
    raise TraceFormatError(f"{source}: cannot tell which engine wrote this (no vllm:spec_decode counter, "
                           "sglang:spec_accept_length, accept len:, specDecodingStats, draft_n or n_accept); "
                           f"pass engine= one of {', '.join(ENGINES)}")


def read_engine_metrics(path_or_text: str | os.PathLike, engine: str = "auto") -> EngineMetrics:
    """Parse a metrics file (or its text) of ``engine`` (``"vllm"``, ``"sglang"``, ``"llamacpp"``,
    ``"trtllm"`` or ``"auto"``) into an :class:`EngineMetrics`."""
    if engine not in ENGINES + ("auto",):
        raise InvalidParameterError(f"engine must be one of {', '.join(ENGINES)} or 'auto', got {engine!r}")
    text, source = _text(path_or_text)
    if not text.strip():
        raise TraceFormatError(f"{source}: empty; expected engine metrics")
    if engine == "auto":
        engine = _detect(text, source)
    if engine == "vllm":
        return _vllm_prometheus(text, source) if "vllm:spec_decode" in text else _vllm_json(text, source)
    return {"sglang": _sglang, "llamacpp": _llamacpp, "trtllm": _trtllm}[engine](text, source)


def from_engine_metrics(path_or_text: str | os.PathLike, engine: str = "auto",
                        k: int | None = None) -> PositionalAcceptance | IIDAcceptance:
    """The acceptance process a serving engine's speculative-decoding metrics imply.

    ``path_or_text``: a file, or its text; ``engine``: which engine wrote it
    (``"auto"`` recognises each format); ``k``: the lookahead the server ran with,
    needed where the metrics give only a mean acceptance length (SGLang, llama.cpp
    timings).  Per-position counts give a ``PositionalAcceptance``, a mean an
    ``IIDAcceptance`` (see the module docstring for the rules and the approximation).

    >>> acc = from_engine_metrics("[TP0] Decode batch. #running-req: 1, accept len: 3.20, \\n", k=3)
    >>> round(acc.rate, 4)
    0.8527
    """
    return read_engine_metrics(path_or_text, engine).acceptance(k)
