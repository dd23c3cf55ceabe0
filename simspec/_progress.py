"""One progress bar for long runs: tqdm on stderr when asked for, a do-nothing stand-in otherwise."""

from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, enabled: bool, *, unit: str = "it", tty_only: bool = True):
    """A tqdm bar (with its rate and ETA) on stderr when ``enabled`` — and, with ``tty_only``, stderr is a
    terminal; else an object whose ``update`` and ``close`` do nothing (also without tqdm installed)."""
    if enabled and (sys.stderr.isatty() or not tty_only):
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
        except ImportError:
            pass

    class _Null:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Null()
