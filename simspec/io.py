"""Result files: written atomically (temporary file + rename), read without pickle; text input decoded line by line."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

__all__ = ["atomic_write_text", "atomic_write_bytes", "write_csv", "write_json", "write_numbers", "read_numbers",
           "decoded_lines", "add_reference_flag", "check_reference_flag", "write_experiment_numbers"]


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file should be readable like any other
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["%.10g" % x if isinstance(x, float) else x for x in row])
    return atomic_write_text(path, buf.getvalue())


def write_json(path: str | os.PathLike, obj: Mapping[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def _number(x: Any) -> Any:
    """A table cell as plain JSON: numpy scalars as Python values, NaN as null, infinities as "inf"/"-inf"."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, float) and x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return x


def write_numbers(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                  **meta: Any) -> Path:
    """An experiment's table as JSON, ``{**meta, "columns": [...], "rows": [[...], ...]}``, at full precision.

    The experiments write it beside their CSV; a committed quick-mode copy is the
    reference ``tests/test_experiments_regen.py`` compares a fresh quick run with.
    """
    table = [[_number(x) for x in row] for row in rows]
    for i, row in enumerate(table):
        if len(row) != len(columns):
            raise ValueError(f"row {i} has {len(row)} cells for {len(columns)} columns")
    # floats to 12 significant digits (far below any tolerance a test states), one row a line: small diffs
    table = [[float(f"{x:.12g}") if isinstance(x, float) else x for x in row] for row in table]
    head = {**{k: _number(v) for k, v in meta.items()}, "columns": list(columns)}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    body = ",\n".join("    " + json.dumps(row) for row in table)
    return atomic_write_text(path, "{\n" + "\n".join(lines) + '\n  "rows": [\n' + body + "\n  ]\n}\n")


def read_numbers(path: str | os.PathLike) -> dict[str, Any]:
    """What :func:`write_numbers` wrote, with each row also as a dict (``records``)."""
    with open(path, encoding="utf-8") as fh:
        obj = json.load(fh)
    obj["records"] = [dict(zip(obj["columns"], row)) for row in obj["rows"]]
    return obj


def decoded_lines(raw_lines: Iterable[bytes], source: Any, what: str,
                  error: type[Exception]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of UTF-8 input, its line end and a leading BOM removed.

    The one rule of every loader of text files: a line that is not UTF-8 raises ``error``
    naming ``source:line:column`` (the column in characters) and the offending byte, then
    ``what`` (what the file should be).

    >>> list(decoded_lines([b"\\xef\\xbb\\xbfab\\r\\n", b"c"], "f.txt", "", ValueError))
    [(1, 'ab'), (2, 'c')]
    >>> list(decoded_lines([b"ok\\n", b"x\\xff"], "f.txt", "a trace is text", ValueError))
    Traceback (most recent call last):
    ...
    ValueError: f.txt:2:2: not UTF-8 text (byte 0xff); a trace is text
    """
    for lineno, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            col = len(raw[: exc.start].decode("utf-8", "replace")) + 1
            raise error(f"{source}:{lineno}:{col}: not UTF-8 text (byte {raw[exc.start]:#04x}); {what}") from None
        if lineno == 1:
            line = line.lstrip("\ufeff")
        yield lineno, line.rstrip("\r\n")


# -- the experiments' regeneration protocol (tests/test_experiments_regen.py) -------------------------------------

REFERENCE_HELP = ("with --quick: also write the numbers to quick_reference.json beside this script "
                  "(what tests/test_experiments_regen.py compares a fresh quick run with)")


def add_reference_flag(parser) -> None:
    """An experiment's ``--reference`` flag (see :func:`write_experiment_numbers`)."""
    parser.add_argument("--reference", action="store_true", help=REFERENCE_HELP)


def check_reference_flag(args) -> None:
    """``--reference`` needs ``--quick``: the reference holds the quick run's numbers."""
    if getattr(args, "reference", False) and not getattr(args, "quick", False):
        raise SystemExit("--reference needs --quick: the reference holds the quick run's numbers")


def write_experiment_numbers(out: str | os.PathLike, script_dir: str | os.PathLike, columns: Sequence[str],
                             rows: Iterable[Sequence[Any]], *, reference: bool = False, **meta: Any) -> None:
    """``out/numbers.json`` (every number of the run), and with ``reference`` also
    ``script_dir/quick_reference.json``, the numbers a fresh quick run must reproduce."""
    rows = [list(r) for r in rows]
    write_numbers(Path(out) / "numbers.json", columns, rows, **meta)
    if reference:
        write_numbers(Path(script_dir) / "quick_reference.json", columns, rows, **meta)
