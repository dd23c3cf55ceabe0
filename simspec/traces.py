"""Trace files: per-position acceptance traces and per-round traces (JSON lines), read and written.

Two formats, both JSON lines (one JSON object a line, UTF-8), fixed by the
project (``simspec record`` writes the first; engines and instrumented loops
can write the second):

* **Per-position acceptance trace.**  Line 1 is a header
  ``{"format": "simspec-acceptance-trace", "version": 1, "provenance": {...}}``;
  then one object per prompt, ``{"prompt": id, "prompt_len": p, "outcomes": [1, 0, null, ...],
  "signals": {"top1_prob": [...], ...}}``.  ``outcomes[j]`` is 1 if the drafter's
  proposal at output position ``j`` equals the target's token there, 0 if not,
  ``null`` if unobserved; ``signals`` (optional) are per-position drafter
  signals of the same length (entries may be null).  :func:`load_acceptance_trace`
  returns a :class:`~simspec.acceptance.TraceAcceptance` (how an unobserved
  position is replayed is documented there); :func:`write_acceptance_trace`
  writes the format atomically.
* **Per-round trace.**  One object per round, ``{"prompt": id, "prompt_len": p,
  "round": i, "drafted": k, "accepted": n, "drafter_forwards": f}`` (``drafted``
  may be 0: a round with no candidate; ``prompt_len`` and ``drafter_forwards``
  optional, ``f`` defaulting to ``k``; optional ``"drafter_widths": [w1, ..., wf]``, the
  width of each drafter forward — a drafter re-fed after re-tokenisation catches up with one
  forward wider than 1 —, default all 1; other keys ignored), with an optional header
  ``{"format": "simspec-round-trace", "version": 1, "provenance": {...}}``.
  :func:`load_round_trace` returns a :class:`RoundTrace`, which turns into an
  acceptance process (:meth:`RoundTrace.acceptance`: ask "what if another
  lookahead") and a lookahead policy that replays the recorded one
  (:meth:`RoundTrace.lookahead`); :func:`simspec.replay.replay_rounds` prices the
  recorded rounds forward by forward.

Every loader error is a :class:`~simspec.errors.TraceFormatError` naming the
file, the line and the column.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "acc.jsonl")
>>> _ = write_acceptance_trace(path, [{"prompt": "p0", "prompt_len": 12, "outcomes": [1, 1, 0, None]}],
...                            provenance={"target": "demo"})
>>> acc = load_acceptance_trace(path)
>>> acc.traces, acc.prompts, acc.provenance["target"]
(((True, True, False, None),), ('p0',), 'demo')
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from ._checks import MAX_TRACE_POSITIONS
from .acceptance import TraceAcceptance
from .errors import InvalidParameterError, TraceFormatError
from .io import atomic_write_text, decoded_lines
from .lookahead import RoundView

__all__ = [
    "ACCEPTANCE_TRACE_FORMAT",
    "ROUND_TRACE_FORMAT",
    "load_acceptance_trace",
    "write_acceptance_trace",
    "PromptRounds",
    "RoundTrace",
    "RecordedLookahead",
    "load_round_trace",
    "write_round_trace",
    "read_acceptance",
    "BUILTIN_TRACES",
    "builtin_trace",
]

ACCEPTANCE_TRACE_FORMAT = "simspec-acceptance-trace"
ROUND_TRACE_FORMAT = "simspec-round-trace"
_VERSION = 1
_RECORD_KEYS = ("prompt", "prompt_len", "outcomes", "signals")
#: The signal :meth:`RoundTrace.acceptance` carries: the recorded lookahead of the round covering each position.
RECORDED_LOOKAHEAD = "recorded_lookahead"


# -- reading JSON lines ----------------------------------------------------------------------------

def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width] + "..."


def _col(line: str, key: str | None) -> int:
    """1-based column of ``"key"`` in the line (1 if absent): where a field error points."""
    if key is None:
        return 1
    i = line.find(json.dumps(key))
    return i + 1 if i >= 0 else 1


def _json_lines(path: str | os.PathLike, what: str) -> Iterator[tuple[int, str, Any]]:
    """``(line number, line, parsed object)`` for every non-blank line of a JSON-lines file."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise TraceFormatError(f"{path}: no such file (expected {what})") from None
    except IsADirectoryError:
        raise TraceFormatError(f"{path}: is a directory, not {what}") from None
    with fh:
        for lineno, line in decoded_lines(fh, path, f"{what} is JSON lines, one object a line", TraceFormatError):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(
                    f"{path}:{lineno}:{exc.colno}: not valid JSON ({exc.msg}): {_clip(line.strip())!r}; "
                    f"{what} holds one JSON object a line"
                ) from None
            except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits, nesting 10^5 deep
                raise TraceFormatError(f"{path}:{lineno}:1: unreadable JSON ({exc.__class__.__name__}: "
                                       f"{_clip(str(exc))})") from None
            yield lineno, line, obj


def _fail(path, lineno: int, line: str, key: str | None, message: str) -> TraceFormatError:
    return TraceFormatError(f"{path}:{lineno}:{_col(line, key)}: {message}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _header(path, lineno: int, line: str, obj: Any, fmt: str) -> dict[str, Any] | None:
    """The provenance of a header line of format ``fmt``; None if the line is no header."""
    if not isinstance(obj, dict) or "format" not in obj:
        return None
    if obj["format"] != fmt:
        raise _fail(path, lineno, line, "format",
                    f"the header says format {obj['format']!r}, but this loader reads {fmt!r}")
    version = obj.get("version")
    if not _is_int(version) or version < 1:
        raise _fail(path, lineno, line, "version", f"the header's version must be an integer >= 1, got {version!r}")
    if version > _VERSION:
        raise _fail(path, lineno, line, "version",
                    f"{fmt} version {version} is newer than this simspec reads ({_VERSION}); upgrade simspec")
    prov = obj.get("provenance", {})
    if not isinstance(prov, dict):
        raise _fail(path, lineno, line, "provenance", f"the header's provenance must be an object, got {prov!r}")
    return prov


def _prompt_id(path, lineno: int, line: str, obj: Mapping[str, Any]) -> str:
    if "prompt" not in obj:
        raise _fail(path, lineno, line, None, "missing \"prompt\" (the prompt's id, a string or an integer)")
    pid = obj["prompt"]
    if not (isinstance(pid, str) or _is_int(pid)):
        raise _fail(path, lineno, line, "prompt", f"\"prompt\" must be a string or an integer id, got {pid!r}")
    return str(pid)


def _opt_count(path, lineno: int, line: str, obj: Mapping[str, Any], key: str, minimum: int = 0) -> int | None:
    if key not in obj or obj[key] is None:
        return None
    v = obj[key]
    if not _is_int(v) or v < minimum:
        raise _fail(path, lineno, line, key, f"\"{key}\" must be an integer >= {minimum}, got {_clip(repr(v))}")
    return v


# -- per-position acceptance traces ----------------------------------------------------------------

def _outcome(x: Any) -> bool | None | str:
    if x is None:
        return None
    if isinstance(x, bool):
        return x
    if isinstance(x, (int, np.integer)) and x in (0, 1):
        return bool(x)
    if isinstance(x, (float, np.floating)) and x in (0.0, 1.0):
        return bool(x)
    return "bad"


def _signal_value(x: Any) -> float | None | str:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return "bad"
    x = float(x)
    if math.isnan(x):
        return None
    return x if math.isfinite(x) else "bad"


def load_acceptance_trace(path: str | os.PathLike, wrap: bool = False) -> TraceAcceptance:
    """Read a per-position acceptance trace (JSON lines) into a :class:`~simspec.acceptance.TraceAcceptance`.

    The process carries the outcomes (``None`` where unobserved), the signals
    (NaN where null; a signal that a prompt lacks is NaN there), the prompts'
    ids and lengths, and the header's provenance.  Prompt ids must be unique
    (each prompt is one independent unit).  ``wrap`` as for ``TraceAcceptance``.
    """
    what = f"a {ACCEPTANCE_TRACE_FORMAT} file"
    provenance: dict[str, Any] | None = None
    traces: list[tuple[bool | None, ...]] = []
    prompts: list[str] = []
    lens: list[int | None] = []
    sigs: list[dict[str, list[float | None]]] = []
    seen: dict[str, int] = {}
    total = 0
    for lineno, line, obj in _json_lines(path, what):
        if provenance is None:
            provenance = _header(path, lineno, line, obj, ACCEPTANCE_TRACE_FORMAT)
            if provenance is None:
                raise _fail(path, lineno, line, None,
                            f"the first line must be the header {{\"format\": \"{ACCEPTANCE_TRACE_FORMAT}\", "
                            f"\"version\": 1, \"provenance\": {{...}}}}, got {_clip(line.strip())!r}")
            continue
        if not isinstance(obj, dict):
            raise _fail(path, lineno, line, None, f"expected one object per prompt, got {_clip(line.strip())!r}")
        unknown = sorted(set(obj) - set(_RECORD_KEYS))
        if unknown:
            raise _fail(path, lineno, line, unknown[0],
                        f"unknown key {unknown[0]!r}; a prompt's line holds {', '.join(_RECORD_KEYS)}")
        pid = _prompt_id(path, lineno, line, obj)
        if pid in seen:
            raise _fail(path, lineno, line, "prompt",
                        f"prompt {pid!r} already appeared on line {seen[pid]}; each prompt is one trace")
        plen = _opt_count(path, lineno, line, obj, "prompt_len")
        outs = obj.get("outcomes")
        if not isinstance(outs, list) or not outs:
            raise _fail(path, lineno, line, "outcomes" if "outcomes" in obj else None,
                        f"\"outcomes\" must be a non-empty list of 1, 0 and null, got {_clip(repr(outs))}")
        total += len(outs)
        if total > MAX_TRACE_POSITIONS:
            raise _fail(path, lineno, line, "outcomes",
                        f"the traces so far hold {total:.3g} positions, more than the limit of "
                        f"{MAX_TRACE_POSITIONS:.3g} (memory); split the file")
        trace = [_outcome(x) for x in outs]
        if "bad" in trace:
            j = trace.index("bad")
            raise _fail(path, lineno, line, "outcomes",
                        f"outcomes[{j}] is {_clip(repr(outs[j]))}; an outcome is 1 (accepted), 0 (rejected) "
                        "or null (unobserved)")
        if all(x is None for x in trace):
            raise _fail(path, lineno, line, "outcomes", f"prompt {pid!r} has no observed outcome (all null)")
        signals = obj.get("signals")
        clean: dict[str, list[float | None]] = {}
        if signals is not None:
            if not isinstance(signals, dict):
                raise _fail(path, lineno, line, "signals",
                            f"\"signals\" must be an object of per-position arrays, got {_clip(repr(signals))}")
            for name, values in signals.items():
                if not isinstance(values, list) or len(values) != len(outs):
                    n_vals = len(values) if isinstance(values, list) else "not a list"
                    raise _fail(path, lineno, line, name,
                                f"signal {name!r} must be a list as long as outcomes ({len(outs)}), got {n_vals}")
                row = [_signal_value(x) for x in values]
                if "bad" in row:
                    j = row.index("bad")
                    raise _fail(path, lineno, line, name,
                                f"signal {name!r}[{j}] is {_clip(repr(values[j]))}; a signal value is a finite "
                                "number or null")
                clean[name] = row  # type: ignore[assignment]
        seen[pid] = lineno
        traces.append(tuple(trace))  # type: ignore[arg-type]
        prompts.append(pid)
        lens.append(plen)
        sigs.append(clean)
    if provenance is None:
        raise TraceFormatError(f"{path}:1:1: empty file; expected the header line of {what}")
    if not traces:
        raise TraceFormatError(f"{path}: the header is the only line; {what} needs one line per prompt")
    names = sorted({name for s in sigs for name in s})
    signals_out = {name: tuple(np.array([np.nan if v is None else v for v in s.get(name, [None] * len(t))],
                                        dtype=float) for s, t in zip(sigs, traces)) for name in names}
    return TraceAcceptance(tuple(traces), wrap, signals=signals_out or None, provenance=provenance,
                           prompts=tuple(prompts), prompt_lens=tuple(lens))


def _records_of(records: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(records, TraceAcceptance):
        names = sorted(records.signals or {})
        return [{"prompt": (records.prompts or [str(i) for i in range(len(records.traces))])[i],
                 "prompt_len": None if records.prompt_lens is None else records.prompt_lens[i],
                 "outcomes": list(t),
                 **({"signals": {n: records.signals[n][i] for n in names}} if names else {})}
                for i, t in enumerate(records.traces)]
    return records


def write_acceptance_trace(path: str | os.PathLike, records: Iterable[Mapping[str, Any]] | TraceAcceptance,
                           provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a per-position acceptance trace (JSON lines), atomically; returns the path.

    ``records``: an iterable of dicts with keys ``prompt`` (an id), ``prompt_len``
    (target tokens of the prompt), ``outcomes`` (1/0/None or bools) and optionally
    ``signals`` (``{name: per-position values}``, None or NaN where unknown) — or a
    ``TraceAcceptance``, whose provenance is used when ``provenance`` is None.
    ``provenance``: any JSON-serialisable mapping (target, drafter, corpus, ...).
    A bad record raises :class:`~simspec.errors.InvalidParameterError` naming it.
    """
    if provenance is None and isinstance(records, TraceAcceptance):
        provenance = records.provenance
    prov = dict(provenance or {})
    try:
        head = json.dumps({"format": ACCEPTANCE_TRACE_FORMAT, "version": _VERSION, "provenance": prov},
                          allow_nan=False, default=str)
    except ValueError as exc:
        raise InvalidParameterError(f"provenance must be JSON-serialisable (no NaN or infinity): {exc}") from None
    lines = [head]
    seen: set[str] = set()
    for i, rec in enumerate(_records_of(records)):
        if not isinstance(rec, Mapping):
            raise InvalidParameterError(f"record {i} must be a dict with prompt, prompt_len, outcomes, got {rec!r}")
        unknown = sorted(set(rec) - set(_RECORD_KEYS))
        if unknown:
            raise InvalidParameterError(f"record {i} has unknown key {unknown[0]!r}; use {', '.join(_RECORD_KEYS)}")
        pid = rec.get("prompt")
        if pid is None or not isinstance(pid, (str, int, np.integer)) or isinstance(pid, bool):
            raise InvalidParameterError(f"record {i} needs a prompt id (a string or an integer), got {pid!r}")
        pid = str(pid)
        if pid in seen:
            raise InvalidParameterError(f"record {i}: prompt {pid!r} appears twice; each prompt is one trace")
        seen.add(pid)
        plen = rec.get("prompt_len")
        if plen is not None and (isinstance(plen, bool) or not isinstance(plen, (int, np.integer)) or plen < 0):
            raise InvalidParameterError(f"record {i}: prompt_len must be an integer >= 0, got {plen!r}")
        outs = [_outcome(x) for x in list(rec.get("outcomes") or [])]
        if not outs or "bad" in outs or all(x is None for x in outs):
            raise InvalidParameterError(
                f"record {i} ({pid!r}): outcomes must be a non-empty sequence of 1, 0 and None with at least one "
                f"observed, got {rec.get('outcomes')!r}")
        out: dict[str, Any] = {"prompt": pid, "prompt_len": None if plen is None else int(plen),
                               "outcomes": [None if x is None else int(x) for x in outs]}
        if rec.get("signals"):
            sig = {}
            for name, values in dict(rec["signals"]).items():
                row = [_signal_value(x) for x in list(values)]
                if len(row) != len(outs) or "bad" in row:
                    raise InvalidParameterError(
                        f"record {i} ({pid!r}): signal {name!r} must hold {len(outs)} finite numbers or None")
                sig[str(name)] = row
            out["signals"] = sig
        lines.append(json.dumps(out, separators=(",", ":"), allow_nan=False))
    if len(lines) == 1:
        raise InvalidParameterError("no records to write: an acceptance trace needs at least one prompt")
    return atomic_write_text(path, "\n".join(lines) + "\n")


# -- per-round traces ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PromptRounds:
    """The recorded rounds of one prompt: per round ``drafted``, ``accepted`` and ``drafter_forwards``."""

    prompt: str
    prompt_len: int | None
    drafted: tuple[int, ...]
    accepted: tuple[int, ...]
    drafter_forwards: tuple[int, ...]
    #: per round, the width of each drafter forward (``None``: not recorded, every forward of width 1)
    drafter_widths: tuple[tuple[int, ...] | None, ...] | None = None

    def widths(self, i: int) -> tuple[int, ...]:
        """The widths of round ``i``'s drafter forwards (all 1 when not recorded)."""
        if self.drafter_widths is None or self.drafter_widths[i] is None:
            return (1,) * self.drafter_forwards[i]
        return self.drafter_widths[i]

    @property
    def rounds(self) -> int:
        return len(self.drafted)

    @property
    def tokens(self) -> int:
        """Tokens the rounds emitted: ``Σ (accepted + 1)`` (a zero-candidate round emits one)."""
        return sum(self.accepted) + len(self.accepted)

    def outcomes(self) -> tuple[list[bool | None], list[float]]:
        """Per-position outcomes of the rounds that drafted, and the recorded lookahead at each position.

        A round with ``n < k`` accepted gives ``n`` ones then a zero; a fully accepted
        round gives ``k`` ones then ``None`` (its bonus position: the drafter never
        proposed there); a round with no candidate gives nothing.
        """
        outs: list[bool | None] = []
        ks: list[float] = []
        for k, n in zip(self.drafted, self.accepted):
            if k == 0:
                continue
            outs.extend([True] * n)
            outs.append(False if n < k else None)
            ks.extend([float(k)] * (n + 1))
        return outs, ks


@dataclass(frozen=True)
class RoundTrace:
    """Recorded SI rounds, prompt by prompt (:func:`load_round_trace`, or :meth:`from_rows`).

    >>> rt = RoundTrace.from_rows([
    ...     {"prompt": "a", "prompt_len": 8, "round": 0, "drafted": 3, "accepted": 3},
    ...     {"prompt": "a", "prompt_len": 8, "round": 1, "drafted": 3, "accepted": 1},
    ...     {"prompt": "a", "prompt_len": 8, "round": 2, "drafted": 0, "accepted": 0}])
    >>> rt.prompts[0].tokens, rt.acceptance().traces
    (7, ((True, True, True, None, True, False),))
    """

    prompts: tuple[PromptRounds, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.prompts:
            raise InvalidParameterError("a RoundTrace needs at least one prompt with at least one round")

    def __repr__(self) -> str:
        rounds = sum(p.rounds for p in self.prompts)
        return f"RoundTrace({len(self.prompts)} prompt(s), {rounds} rounds, {self.tokens} tokens)"

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.prompts)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], provenance: Mapping[str, Any] | None = None,
                  source: str = "rows") -> "RoundTrace":
        """Rounds from dicts with the per-round format's keys (``round`` may be left out: rows in order)."""
        groups: dict[str, dict[str, Any]] = {}
        for i, row in enumerate(rows):
            _add_round(groups, row, source, i + 1, "", exc=InvalidParameterError, label=f"{source}: row {i}")
        return cls._from_groups(groups, provenance)

    @classmethod
    def _from_groups(cls, groups: Mapping[str, Mapping[str, Any]], provenance) -> "RoundTrace":
        prompts = tuple(PromptRounds(pid, g["prompt_len"], tuple(g["drafted"]), tuple(g["accepted"]),
                                     tuple(g["forwards"]),
                                     tuple(g["widths"]) if any(w is not None for w in g["widths"]) else None)
                        for pid, g in groups.items())
        return cls(prompts, dict(provenance or {}))

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per round, in the per-round format (what :func:`write_round_trace` writes)."""
        rows = []
        for p in self.prompts:
            for i, (k, n, f) in enumerate(zip(p.drafted, p.accepted, p.drafter_forwards)):
                row: dict[str, Any] = {"prompt": p.prompt}
                if p.prompt_len is not None:
                    row["prompt_len"] = p.prompt_len
                row.update(round=i, drafted=k, accepted=n, drafter_forwards=f)
                if p.drafter_widths is not None and p.drafter_widths[i] is not None:
                    row["drafter_widths"] = list(p.drafter_widths[i])
                rows.append(row)
        return rows

    def acceptance(self, wrap: bool = False) -> TraceAcceptance:
        """The recorded outcomes as an acceptance process, one trace per prompt.

        The outcomes are those of :meth:`PromptRounds.outcomes` (zero-candidate rounds
        give none, so a prompt whose every round had no candidate is left out); the
        signal ``"recorded_lookahead"`` holds the recorded lookahead of the round
        covering each position, which :meth:`lookahead` replays.  Run any engine on
        it with another lookahead to ask "what if".
        """
        traces, ks, ids, lens = [], [], [], []
        for p in self.prompts:
            outs, k = p.outcomes()
            if outs:
                traces.append(tuple(outs))
                ks.append(np.asarray(k, dtype=float))
                ids.append(p.prompt)
                lens.append(p.prompt_len)
        if not traces:
            raise InvalidParameterError("no round of any prompt drafted a candidate: there is no outcome to replay")
        return TraceAcceptance(tuple(traces), wrap, signals={RECORDED_LOOKAHEAD: tuple(ks)},
                               provenance=dict(self.provenance), prompts=tuple(ids), prompt_lens=tuple(lens))

    def lookahead(self) -> "RecordedLookahead":
        """A lookahead policy that proposes, at each position, the recorded lookahead of the round there.

        It reads the ``"recorded_lookahead"`` signal of :meth:`acceptance`'s draws, so
        it works with any row order (random picks, blocks of rows).  Replayed on a
        prompt's own outcomes it reproduces every recorded round that drafted —
        except that the engines cut a round at the end of generation to the
        positions left minus one (as transformers does), so a last round whose
        drafts ran past the recorded end is replayed with fewer drafts (same
        accepted drafts, same tokens).  Zero-candidate rounds are not replayed
        (an SI round drafts at least one token); their tokens are missing from
        the replay, and :func:`simspec.replay.replay_rounds` prices them instead.
        """
        return RecordedLookahead()


def _add_round(groups: dict[str, dict[str, Any]], obj: Any, path, lineno: int, line: str,
               exc=TraceFormatError, label: str | None = None) -> None:
    where = label or None

    def fail(key, msg):
        if where is not None:
            return exc(f"{where}: {msg}")
        return _fail(path, lineno, line, key, msg)

    if not isinstance(obj, Mapping):
        raise fail(None, f"expected one object per round, got {_clip(repr(obj))}")
    if "prompt" not in obj:
        raise fail(None, "missing \"prompt\" (the prompt's id, a string or an integer)")
    pid = obj["prompt"]
    if not (isinstance(pid, str) or _is_int(pid)):
        raise fail("prompt", f"\"prompt\" must be a string or an integer id, got {_clip(repr(pid))}")
    pid = str(pid)
    values = {}
    for key, required in (("drafted", True), ("accepted", True), ("drafter_forwards", False), ("prompt_len", False),
                          ("round", False)):
        v = obj.get(key)
        if v is None:
            if required:
                raise fail(None, f"missing \"{key}\" (an integer >= 0) in the round of prompt {pid!r}")
            values[key] = None
            continue
        if not _is_int(v) or v < 0:
            raise fail(key, f"\"{key}\" must be an integer >= 0, got {_clip(repr(v))}")
        values[key] = v
    k, n = values["drafted"], values["accepted"]
    if n > k:
        raise fail("accepted", f"accepted = {n} exceeds drafted = {k}: a round accepts at most what it drafted")
    f = k if values["drafter_forwards"] is None else values["drafter_forwards"]
    widths = obj.get("drafter_widths")
    if widths is not None:
        if not isinstance(widths, list) or not all(_is_int(w) and w >= 1 for w in widths):
            raise fail("drafter_widths", f"\"drafter_widths\" must be a list of integers >= 1 (one per drafter "
                                         f"forward), got {_clip(repr(widths))}")
        if len(widths) != f:
            raise fail("drafter_widths", f"\"drafter_widths\" lists {len(widths)} forwards but the round has "
                                         f"drafter_forwards = {f}")
        widths = tuple(int(w) for w in widths)
    g = groups.setdefault(pid, {"prompt_len": values["prompt_len"], "drafted": [], "accepted": [], "forwards": [],
                                "widths": [], "round": None, "line": lineno})
    if values["prompt_len"] is not None and g["prompt_len"] not in (None, values["prompt_len"]):
        raise fail("prompt_len", f"prompt {pid!r} has prompt_len {values['prompt_len']} here but "
                                 f"{g['prompt_len']} before")
    g["prompt_len"] = g["prompt_len"] if values["prompt_len"] is None else values["prompt_len"]
    r = values["round"]
    if r is not None and g["round"] is not None and r != g["round"] + 1:
        raise fail("round", f"prompt {pid!r}: round {r} follows round {g['round']}; rounds of a prompt must appear "
                            "in order, none missing (a missing round would shift every later position)")
    g["round"] = r if r is not None else (g["round"] + 1 if g["round"] is not None else 0)
    g["drafted"].append(k)
    g["accepted"].append(n)
    g["forwards"].append(f)
    g["widths"].append(widths)


def load_round_trace(path: str | os.PathLike) -> RoundTrace:
    """Read a per-round trace (JSON lines) into a :class:`RoundTrace` (zero-candidate rounds kept).

    Rounds of several prompts may interleave; each prompt's rounds must appear
    in order of ``round`` with none missing.  Unknown keys are ignored.
    """
    what = f"a per-round trace ({ROUND_TRACE_FORMAT})"
    provenance: dict[str, Any] | None = None
    groups: dict[str, dict[str, Any]] = {}
    first = True
    tokens = 0
    for lineno, line, obj in _json_lines(path, what):
        if first:
            first = False
            provenance = _header(path, lineno, line, obj, ROUND_TRACE_FORMAT)
            if provenance is not None:
                continue
        _add_round(groups, obj, path, lineno, line)
        tokens += obj["accepted"] + 1
        if tokens > MAX_TRACE_POSITIONS:
            raise _fail(path, lineno, line, "accepted",
                        f"the rounds so far emit {tokens:.3g} tokens, more than the limit of "
                        f"{MAX_TRACE_POSITIONS:.3g} (memory); split the file")
    if not groups:
        raise TraceFormatError(f"{path}: no rounds found (expected {what}: one object per round)")
    return RoundTrace._from_groups(groups, provenance)


def write_round_trace(path: str | os.PathLike, rounds: RoundTrace | Iterable[Mapping[str, Any]],
                      provenance: Mapping[str, Any] | None = None) -> Path:
    """Write a per-round trace (JSON lines, with its header), atomically; returns the path.

    ``rounds``: a :class:`RoundTrace`, or dicts with the format's keys (validated
    as :meth:`RoundTrace.from_rows` does).
    """
    trace = rounds if isinstance(rounds, RoundTrace) else RoundTrace.from_rows(rounds, provenance)
    prov = dict(provenance if provenance is not None else trace.provenance)
    try:
        head = json.dumps({"format": ROUND_TRACE_FORMAT, "version": _VERSION, "provenance": prov},
                          allow_nan=False, default=str)
    except ValueError as exc:
        raise InvalidParameterError(f"provenance must be JSON-serialisable (no NaN or infinity): {exc}") from None
    body = [json.dumps(r, separators=(",", ":")) for r in trace.to_rows()]
    return atomic_write_text(path, "\n".join([head] + body) + "\n")


# -- the recorded lookahead as a policy --------------------------------------------------------------

class _Recorded:
    def __init__(self, signal: str) -> None:
        self.signal = signal

    def propose(self, view: RoundView) -> np.ndarray:
        sig = view.signal(self.signal, "RecordedLookahead",
                          "replay the outcomes of RoundTrace.acceptance() (they carry it)")
        pos = np.minimum(view.position, sig.shape[1] - 1)
        k = np.asarray(sig[view.rows, pos], dtype=float)
        return np.where(np.isfinite(k) & (k >= 1), k, 1.0).astype(np.int64)

    def observe(self, drafted: np.ndarray, accepted: np.ndarray) -> None:
        pass


@dataclass(frozen=True)
class RecordedLookahead:
    """Propose the lookahead recorded at each lane's position (the ``"recorded_lookahead"`` signal).

    Built by :meth:`RoundTrace.lookahead`; a position without a recorded value
    (NaN) proposes 1.
    """

    signal: str = RECORDED_LOOKAHEAD

    @property
    def name(self) -> str:
        return "recorded"

    @property
    def static_k(self) -> None:
        return None

    def start(self, lanes: int) -> _Recorded:
        return _Recorded(self.signal)


def read_acceptance(path: str | os.PathLike, wrap: bool = False) -> TraceAcceptance:
    """Any acceptance file simspec reads, by its content: the one rule behind ``--acceptance-trace``.

    A first line (blank and ``#`` lines skipped) that is a JSON object is a per-position trace
    (:func:`load_acceptance_trace`: it has ``outcomes``, or the acceptance-trace header) or a per-round
    trace (:func:`load_round_trace`, replayed as its outcomes: it has ``drafted``, or the round-trace
    header); anything else is the text format of :meth:`TraceAcceptance.from_file` (0/1 strings or
    ``runs:`` lines).
    """
    kind = trace_kind(path)
    if kind == "rounds":
        return load_round_trace(path).acceptance(wrap=wrap)
    if kind == "positions":
        return load_acceptance_trace(path, wrap=wrap)  # it says what is wrong with a malformed line
    return TraceAcceptance.from_file(path, wrap=wrap)


def trace_kind(path: str | os.PathLike) -> str:
    """``"rounds"`` (a per-round trace), ``"positions"`` (a JSON-lines per-position trace) or ``"text"``.

    Read from the first line that is not blank or a ``#`` comment: the rule :func:`read_acceptance`
    and ``simspec replay`` follow.
    """
    first = ""
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", "replace").strip().lstrip("\ufeff")
            if line and not line.startswith("#"):
                first = line
                break
    if not first.startswith("{"):
        return "text"
    try:
        obj = json.loads(first)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and (obj.get("format") == ROUND_TRACE_FORMAT or "drafted" in obj):
        return "rounds"
    return "positions"


#: Traces that ship with simspec (``simspec/data/traces/``), by name: see :func:`builtin_trace`.
BUILTIN_TRACES = {"cpu-real-pair": "cpu_real_pair.jsonl"}


def builtin_trace(name: str, wrap: bool = False) -> TraceAcceptance:
    """A per-position acceptance trace that ships with simspec.

    ``"cpu-real-pair"``: SmolLM2-135M drafting for Gemma-3-270M (different tokenizers: the string
    rule of ``simspec record``, written out in the provenance), greedy, 8 built-in prompts × 64 tokens,
    recorded on this project's CPU with the profiles of ``builtin_profile("cpu-real-pair", ...)``.

    >>> acc = builtin_trace("cpu-real-pair")
    >>> len(acc.traces), round(acc.mean, 3)
    (8, 0.674)
    """
    return load_acceptance_trace(builtin_trace_path(name), wrap=wrap)


def builtin_trace_path(name: str) -> str:
    """The file of a built-in trace (``simspec/data/traces/``), for readers that take a path."""
    from importlib.resources import files

    if name not in BUILTIN_TRACES:
        raise InvalidParameterError(f"no built-in trace {name!r}; the built-in traces are {sorted(BUILTIN_TRACES)}")
    return str(files("simspec") / "data" / "traces" / BUILTIN_TRACES[name])
