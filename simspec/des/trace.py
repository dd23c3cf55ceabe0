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
import os
from typing import Any, Iterable

from ..io import atomic_write_text

__all__ = ["EventLog", "write_jsonl", "read_jsonl"]


class EventLog:
    """Collects events; ``enabled=False`` makes every call a no-op (the default, and free)."""

    __slots__ = ("enabled", "events")

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.events: list[dict[str, Any]] = []

    def __call__(self, t: float, event: str, lane: str, task: int | None = None, positions=None) -> None:
        if self.enabled:
            rec: dict[str, Any] = {"t": float(t), "event": event, "lane": lane}
            if task is not None:
                rec["task"] = int(task)
            if positions is not None:
                rec["positions"] = [int(positions[0]), int(positions[1])]
            self.events.append(rec)


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
