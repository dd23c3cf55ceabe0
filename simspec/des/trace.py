"""Event log of one discrete-event run: plain dicts in memory, or JSON lines streamed to a file.

Each event has ``t`` (ms of virtual time), ``event``, ``lane`` (``"prefill"``,
``"drafter"``, ``"chain"``, ``"queue"`` or ``"server N"``) and, where they apply, ``task`` (an id) and
``positions`` (``[first, last]``, 0-based output positions).  Events: ``prefill_start``/``prefill_end``,
``draft_start``/``draft_end``/``draft_cancel`` (a drafter block),
``verify_queued``/``verify_start``/``verify_end``/``verify_cancel`` (a
verification task), ``chain_start``/``chain_end``/``chain_cancel`` (a non-SI
chain forward), ``reject`` (a rejected position, ``positions = [r, r]``),
``confirm`` (positions newly confirmed, in order; they partition ``0..S−1``),
``done`` (the run's last token confirmed).

A long run makes millions of events: an :class:`EventLog` given a ``path``
writes each event as it happens (to a temporary file renamed onto ``path`` at
the end) and keeps none in memory unless asked.  A line is
``json.dumps(event, sort_keys=True)``, formatted directly for the fields above.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["EventLog", "write_jsonl", "read_jsonl"]

_KEYS = frozenset(("t", "event", "lane", "task", "positions"))
_STR_CACHE: dict[str, str] = {}  # JSON of lane and event names (a few dozen in a run)


def _json_str(x: str) -> str:
    out = _STR_CACHE.get(x)
    if out is None:
        out = json.dumps(x)
        if len(_STR_CACHE) < 4096:
            _STR_CACHE[x] = out
    return out


def _line(t: float, event: str, lane: str, task: int | None, positions) -> str:
    """``json.dumps`` of the event's record with ``sort_keys=True``, plus a newline, without building the record."""
    pos = "" if positions is None else f', "positions": [{int(positions[0])}, {int(positions[1])}]'
    tt = repr(t) if math.isfinite(t) else json.dumps(t)
    tk = "" if task is None else f', "task": {int(task)}'
    return f'{{"event": {_json_str(event)}, "lane": {_json_str(lane)}{pos}, "t": {tt}{tk}}}\n'


def _record_line(rec: dict[str, Any]) -> str:
    """One line of :func:`write_jsonl`: the fast format for an event record, ``json.dumps`` for anything else."""
    t, pos, task = rec.get("t"), rec.get("positions"), rec.get("task")
    if (rec.keys() <= _KEYS and type(t) is float and type(rec.get("event")) is str and type(rec.get("lane")) is str
            and (task is None or type(task) is int)
            and (pos is None or (type(pos) is list and len(pos) == 2 and type(pos[0]) is int and type(pos[1]) is int))):
        return _line(t, rec["event"], rec["lane"], task, pos)
    return json.dumps(rec, sort_keys=True) + "\n"


class _AtomicLines:
    """Text lines into a temporary file next to ``path``, renamed onto it by :meth:`commit`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(self.tmp, 0o666 & ~mask)  # mkstemp makes 0600; as simspec.io writes its files
            self.fh = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20)
        except BaseException:
            os.close(fd)
            os.unlink(self.tmp)
            raise
        self.write = self.fh.write

    def commit(self) -> None:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.fh.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


class EventLog:
    """Collects events; ``enabled=False`` makes every call a no-op (the default, and free).

    With ``path`` the events are also written to that file as JSON lines as they
    happen, into a temporary file next to it that :meth:`close` renames onto
    ``path`` (readers see the old file or the whole new one, never half of it;
    :meth:`abort`, or leaving a ``with`` block by an exception, removes it).
    The file is byte for byte what :func:`write_jsonl` writes for the same
    events.  ``keep`` says whether the events are also kept in ``events``
    (default: only when there is no ``path``), so that a long run's trace costs
    no memory::

        with EventLog(path="run.jsonl") as log:
            run_once(scenario, "dsi", accepted, log=log)
    """

    __slots__ = ("enabled", "events", "path", "keep", "_out", "_write")

    def __init__(self, enabled: bool = True, path: str | os.PathLike | None = None,
                 keep: bool | None = None) -> None:
        self.enabled = enabled
        self.events: list[dict[str, Any]] = []
        self.path = Path(path) if path is not None else None
        self.keep = (path is None) if keep is None else bool(keep)
        self._out = _AtomicLines(self.path) if enabled and self.path is not None else None
        self._write = self._out.write if self._out is not None else None

    def __call__(self, t: float, event: str, lane: str, task: int | None = None, positions=None) -> None:
        if self.enabled:
            t = float(t)
            if self.keep:
                rec: dict[str, Any] = {"t": t, "event": event, "lane": lane}
                if task is not None:
                    rec["task"] = int(task)
                if positions is not None:
                    rec["positions"] = [int(positions[0]), int(positions[1])]
                self.events.append(rec)
            if self._write is not None:
                self._write(_line(t, event, lane, task, positions))

    @property
    def streaming(self) -> bool:
        """Is the log writing to a file (opened and not yet closed)?"""
        return self._out is not None

    def close(self) -> Path | None:
        """Finish the file: flush it and rename it onto ``path``; returns the path (``None`` without a file)."""
        out, self._out, self._write = self._out, None, None
        if out is not None:
            out.commit()
        return self.path if self.enabled else None

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left as it was."""
        out, self._out, self._write = self._out, None, None
        if out is not None:
            out.abort()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(path: str | os.PathLike, events: Iterable[dict[str, Any]]) -> None:
    """Write events as JSON lines (``json.dumps(event, sort_keys=True)`` each), atomically, one line at a time."""
    out = _AtomicLines(Path(path))
    try:
        for rec in events:
            out.write(_record_line(rec))
    except BaseException:
        out.abort()
        raise
    out.commit()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read an event log back (plain JSON; a malformed line raises TraceFormatError with its number)."""
    from ..errors import TraceFormatError

    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(f"{path}:{lineno}: not a JSON object ({exc.msg})") from None
            if not isinstance(rec, dict) or not {"t", "event", "lane"} <= rec.keys():
                raise TraceFormatError(f"{path}:{lineno}: an event needs 't', 'event' and 'lane'")
            out.append(rec)
    return out
