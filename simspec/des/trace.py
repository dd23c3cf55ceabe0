"""Event log of one discrete-event run: a list of plain dicts, written as JSON lines.

Each event has ``t`` (ms of virtual time), ``event``, ``lane`` (``"prefill"``,
``"drafter"``, ``"chain"``, ``"queue"`` or ``"server N"``) and, where they apply, ``task`` (an id) and
``positions`` (``[first, last]``, 0-based output positions).  Events: ``prefill_start``/``prefill_end``,
``draft_start``/``draft_end``/``draft_cancel`` (a drafter block),
``verify_queued``/``verify_start``/``verify_end``/``verify_cancel`` (a
verification task), ``chain_start``/``chain_end``/``chain_cancel`` (a non-SI
chain forward), ``reject`` (a rejected position, ``positions = [r, r]``),
``confirm`` (positions newly confirmed, in order; they partition ``0..S−1``),
``done`` (the run's last token confirmed).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ..io import atomic_write_text

__all__ = ["EventLog", "write_jsonl", "read_jsonl"]


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

    __slots__ = ("enabled", "events", "path", "keep", "_fh", "_tmp", "_str")

    def __init__(self, enabled: bool = True, path: str | os.PathLike | None = None,
                 keep: bool | None = None) -> None:
        self.enabled = enabled
        self.events: list[dict[str, Any]] = []
        self.path = Path(path) if path is not None else None
        self.keep = (path is None) if keep is None else bool(keep)
        self._fh = None
        self._tmp: str | None = None
        self._str: dict[str, str] = {}  # JSON of each lane and event name, built once
        if enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(self._tmp, 0o666 & ~mask)  # as simspec.io writes its files
                self._fh = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20)
            except BaseException:
                os.close(fd)
                os.unlink(self._tmp)
                raise

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
            if self._fh is not None:
                self._fh.write(self._line(t, event, lane, task, positions))

    def _line(self, t: float, event: str, lane: str, task, positions) -> str:
        """``json.dumps(record, sort_keys=True)`` of the event, without building the record."""
        js = self._str
        ev = js.get(event)
        if ev is None:
            ev = js[event] = json.dumps(event)
        ln = js.get(lane)
        if ln is None:
            ln = js[lane] = json.dumps(lane)
        pos = "" if positions is None else f', "positions": [{int(positions[0])}, {int(positions[1])}]'
        tt = repr(t) if math.isfinite(t) else json.dumps(t)
        tk = "" if task is None else f', "task": {int(task)}'
        return f'{{"event": {ev}, "lane": {ln}{pos}, "t": {tt}{tk}}}\n'

    @property
    def streaming(self) -> bool:
        """Is the log writing to a file (opened and not yet closed)?"""
        return self._fh is not None

    def close(self) -> Path | None:
        """Finish the file: flush it and rename it onto ``path`` (the path; ``None`` without one)."""
        if self._fh is None:  # no file, or closed already
            return self.path if self.enabled else None
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            fh.close()
            self._remove_tmp()
            raise
        self._tmp = None
        return self.path

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left as it was."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp is not None and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(path: str | os.PathLike, events: Iterable[dict[str, Any]]) -> None:
    """Write events as JSON lines, atomically."""
    atomic_write_text(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in events))


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
