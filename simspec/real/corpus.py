"""A prompt corpus that ships with Python: the Zen of Python and standard-library docstrings.

No hub, no data set: :func:`builtin_prompts` reads the text of ``this.py`` (the Zen of
Python, rot13-encoded there) and the module docstrings of a fixed list of standard-library
modules, *from their source files* (``ast``, nothing is imported or executed), and cuts
them into prompts of 40 to ``max_chars`` characters at line ends.  The list is
deterministic for a given Python version (docstrings change little between versions;
record the version, as :func:`~simspec.real.record_trace` does in its provenance).

>>> ps = builtin_prompts(3)
>>> [p.id for p in ps]
['zen-0', 'zen-1', 'zen-2']
>>> ps[0].text.splitlines()[0]
'The Zen of Python, by Tim Peters'
>>> builtin_prompts(3) == ps
True
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
from typing import NamedTuple

from .._checks import int_at_least
from ..errors import InvalidParameterError

__all__ = ["Prompt", "builtin_prompts", "STDLIB_MODULES"]

#: Standard-library modules whose docstrings are prompts, in this order (after the Zen of Python).
STDLIB_MODULES = ("json", "csv", "heapq", "bisect", "textwrap", "argparse", "functools", "itertools",
                  "collections", "fractions", "decimal", "statistics", "random", "string", "pathlib",
                  "logging", "difflib", "sched", "queue", "shlex", "calendar", "datetime", "enum",
                  "dataclasses", "contextlib", "pprint", "pickle", "tarfile", "zipfile", "base64")


class Prompt(NamedTuple):
    """One prompt: an id (written into traces) and its text."""

    id: str
    text: str


def _source(module: str) -> str | None:
    spec = importlib.util.find_spec(module)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return None
    with open(origin, encoding="utf-8") as fh:
        return fh.read()


def _zen() -> str:
    tree = ast.parse(_source("this") or "")
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "s" for t in node.targets):
            return codecs.decode(ast.literal_eval(node.value), "rot13")
    return ""  # pragma: no cover - every CPython ships this.py


def _chunks(text: str, max_chars: int) -> list[str]:
    """Consecutive lines joined up to ``max_chars`` (a longer line is cut); pieces under 40 characters dropped."""
    out: list[str] = []
    cur = ""
    for line in text.strip().splitlines():
        line = line.rstrip()[:max_chars]
        if cur and len(cur) + 1 + len(line) > max_chars:
            out.append(cur.strip())
            cur = ""
        cur = f"{cur}\n{line}" if cur else line
    out.append(cur.strip())
    return [c for c in out if len(c) >= 40]


def builtin_prompts(n: int = 8, *, max_chars: int = 400) -> list[Prompt]:
    """The first ``n`` prompts of the built-in corpus (Zen of Python, then stdlib module docstrings)."""
    n = int_at_least("n", n, 1)
    max_chars = int_at_least("max_chars", max_chars, 20)
    prompts = [Prompt(f"zen-{i}", t) for i, t in enumerate(_chunks(_zen(), max_chars))]
    for module in STDLIB_MODULES:
        if len(prompts) >= n:
            break
        src = _source(module)
        doc = ast.get_docstring(ast.parse(src)) if src else None
        if doc:
            prompts += [Prompt(f"{module}-{i}", t) for i, t in enumerate(_chunks(doc, max_chars))]
    if len(prompts) < n:
        raise InvalidParameterError(f"the built-in corpus has {len(prompts)} prompts of at most {max_chars} "
                                    f"characters; ask for at most {len(prompts)}")
    return prompts[:n]
