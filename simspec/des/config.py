"""Options of the discrete-event engine: overheads and queue discipline.

They are part of a :class:`simspec.Deployment` (``simspec/deployment.py``),
which every engine reads; this module re-exports them for the engine's code.
"""

from __future__ import annotations

from ..deployment import Overheads, QueueDiscipline, check_queue

__all__ = ["Overheads", "QueueDiscipline", "check_queue"]
