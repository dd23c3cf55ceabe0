"""Run the shell examples in the docs; check their committed output, or rewrite it.

    python docs/regen.py            # check: print a diff for every stale output, exit 1 if any
    python docs/regen.py --update   # rewrite every checked output in place with a fresh run
    python docs/regen.py --list     # the example blocks, their run times, and which are not checked

A *shell example* is a fenced code block in one of :data:`FILES` whose first line starts with
``$ ``.  Each ``$ `` line is a command (a line ending in ``\\`` continues on the next one); the
lines after it, up to the next command, are what it prints, stdout and stderr together.  Every
block runs in a fresh temporary folder that holds a copy of ``docs/examples/`` (the input files
the examples read, such as ``traces.txt``), with ``simspec`` on the ``PATH`` running this
interpreter's ``simspec.cli``, so the outputs are those of the checkout, not of some other
installation.

Two conventions keep long or slow examples honest:

* an output whose last line is ``...`` shows only its first lines: those are checked, the rest
  is not shown;
* ``<!-- not checked: REASON -->`` on the line just before the fence skips the block (for
  commands too slow to run in the test suite); the reason is required and is printed by
  ``--list``.

``--update`` also copies the figures that examples draw and the guides show (:data:`FIGURES`,
e.g. the Gantt chart of the discrete-event guide) into place.

The only normalisation is of wall-clock timings (``in 2.80 s``), which differ from run to run.
``tests/test_docs_cli.py`` runs every checked block and compares; after a change to what the
CLI prints, ``python docs/regen.py --update`` refreshes every page in one go.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the pages whose shell examples are run (relative to the repository root)
FILES = ("docs/guides/cli.md", "README.md")
#: input files every example may read; copied into each block's folder
EXAMPLES = ROOT / "docs" / "examples"
SLOW_S = 2.0  # a checked block should run faster than this (reported by --list and --update)
#: files that examples write and the docs show: ``--update`` copies each to its place in the repository
FIGURES = {"dsi-gantt.png": "docs/guides/des-gantt.png"}

_FENCE = re.compile(r"^```[\w-]*\s*$")
_SKIP = re.compile(r"^<!--\s*not checked:\s*(?P<reason>.*?)\s*-->\s*$")
_TIMING = re.compile(r"\bin \d+(?:\.\d+)? s\b")


@dataclass
class Command:
    text: str  # the command as shown, continuation lines included (without the "$ ")
    output: list[str]  # the committed output lines


@dataclass
class Block:
    path: str  # relative to ROOT
    first: int  # 0-based index of the first line inside the fence
    last: int  # 0-based index one past the last line inside the fence
    commands: list[Command]
    skip_reason: str | None

    @property
    def checked(self) -> bool:
        return self.skip_reason is None

    @property
    def name(self) -> str:
        return f"{self.path}:{self.first + 1}"


def parse(path: str) -> list[Block]:
    """The shell examples of one page, in order."""
    lines = (ROOT / path).read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if not _FENCE.match(lines[i]):
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        body = lines[i + 1 : j]
        if body and body[0].startswith("$ "):
            skip = _SKIP.match(lines[i - 1]) if i > 0 else None
            if skip and not skip["reason"]:
                raise ValueError(f"{path}:{i}: 'not checked' needs a reason")
            blocks.append(Block(path, i + 1, j, _commands(body), skip["reason"] if skip else None))
        i = j + 1
    return blocks


def _commands(body: list[str]) -> list[Command]:
    out: list[Command] = []
    k = 0
    while k < len(body):
        line = body[k]
        if line.startswith("$ "):
            text = [line[2:]]
            while text[-1].endswith("\\") and k + 1 < len(body):
                k += 1
                text.append(body[k])
            out.append(Command("\n".join(text), []))
        else:
            out[-1].output.append(line)
        k += 1
    return out


def collect() -> list[Block]:
    return [b for path in FILES for b in parse(path)]


def _shim(folder: Path) -> Path:
    """A ``simspec`` executable that runs this interpreter's ``simspec.cli``."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    exe = bin_dir / "simspec"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simspec.cli "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def run_block(block: Block, timeout: float = 120.0, keep: dict[str, str] | None = None,
              times: list[float] | None = None) -> list[list[str]]:
    """Run a block's commands in order, in one fresh folder; the output lines of each.

    ``keep`` maps a file the commands write (relative to their folder) to a path in the
    repository to copy it to; ``times`` collects each command's run time in seconds.
    """
    with tempfile.TemporaryDirectory(prefix="simspec-docs-") as tmp:
        work = Path(tmp) / "work"
        if EXAMPLES.is_dir():
            shutil.copytree(EXAMPLES, work)
        else:
            work.mkdir()
        env = dict(os.environ, PATH=f"{_shim(Path(tmp))}{os.pathsep}{os.environ.get('PATH', '')}",
                   PYTHONIOENCODING="utf-8", PYTHONPATH=str(ROOT), COLUMNS="100", MPLBACKEND="Agg")
        outputs = []
        for cmd in block.commands:
            t0 = time.perf_counter()
            proc = subprocess.run(["bash", "-c", cmd.text], cwd=work, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, encoding="utf-8", timeout=timeout)
            if times is not None:
                times.append(time.perf_counter() - t0)
            outputs.append(proc.stdout.rstrip("\n").split("\n") if proc.stdout.strip() else [])
        for name, dest in (keep or {}).items():
            if (work / name).is_file():
                shutil.copyfile(work / name, ROOT / dest)
                print(f"copied {name} to {dest}")
        return outputs


def normalise(lines: list[str]) -> list[str]:
    """Only wall-clock timings vary from run to run."""
    return [_TIMING.sub("in <t> s", line.rstrip()) for line in lines]


def expected(cmd: Command, fresh: list[str]) -> tuple[list[str], list[str]]:
    """``(committed, fresh)`` cut to what the page shows (all of it, or the lines before a ``...``)."""
    shown = cmd.output
    if shown and shown[-1].strip() == "...":
        shown = shown[:-1]
        fresh = fresh[: len(shown)]
    return normalise(shown), normalise(fresh)


def rendered(cmd: Command, fresh: list[str]) -> list[str]:
    """The page's new lines for one command: the fresh output, cut where the old one was cut.

    An output that is current up to timings is kept as it is, so that an update changes only
    what changed.
    """
    lines = ["$ " + cmd.text.split("\n")[0], *cmd.text.split("\n")[1:]]
    old, new = expected(cmd, fresh)
    if old == new:
        return lines + cmd.output
    if cmd.output and cmd.output[-1].strip() == "...":
        n = len(cmd.output) - 1
        return lines + fresh[:n] + (["..."] if len(fresh) > n else [])
    return lines + fresh


def check(blocks: list[Block]) -> int:
    stale = 0
    for block in blocks:
        if not block.checked:
            continue
        for cmd, fresh in zip(block.commands, run_block(block)):
            old, new = expected(cmd, fresh)
            if old != new:
                stale += 1
                print(f"{block.name}: $ {cmd.text.splitlines()[0]}")
                sys.stdout.writelines(difflib.unified_diff([l + "\n" for l in old], [l + "\n" for l in new],
                                                           "committed", "fresh"))
    print(f"{stale} stale output(s)" if stale else "every checked output is current")
    return 1 if stale else 0


def update(blocks: list[Block]) -> int:
    by_file: dict[str, list[Block]] = {}
    for b in blocks:
        by_file.setdefault(b.path, []).append(b)
    for path, file_blocks in by_file.items():
        lines = (ROOT / path).read_text(encoding="utf-8").split("\n")
        for block in reversed(file_blocks):  # bottom up, so that earlier line numbers stay valid
            if not block.checked:
                continue
            times: list[float] = []
            fresh = run_block(block, keep=FIGURES, times=times)
            new = [line for cmd, out in zip(block.commands, fresh) for line in rendered(cmd, out)]
            lines[block.first : block.last] = new
            print(f"{block.name}: {_timing(times)}")
        text = "\n".join(lines)
        if text != (ROOT / path).read_text(encoding="utf-8"):
            (ROOT / path).write_text(text, encoding="utf-8")
            print(f"rewrote {path}")
    return 0


def _timing(times: list[float]) -> str:
    slow = max(times, default=0.0) > SLOW_S
    flag = f"  (a command slower than {SLOW_S:g} s: shorten it, or mark the block not checked)" if slow else ""
    return f"{len(times)} command(s), " + ", ".join(f"{t:.2f}" for t in times) + f" s{flag}"


def list_blocks(blocks: list[Block]) -> int:
    for b in blocks:
        if b.checked:
            times: list[float] = []
            run_block(b, times=times)
            state = f"checked, {_timing(times)}"
        else:
            state = f"not checked: {b.skip_reason}"
        print(f"{b.name}: $ {b.commands[0].text.splitlines()[0][:70]}  [{state}]")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--update", action="store_true", help="rewrite the committed outputs with fresh runs")
    g.add_argument("--list", action="store_true", help="list the blocks with their run times")
    args = p.parse_args(argv)
    blocks = collect()
    if args.update:
        return update(blocks)
    if args.list:
        return list_blocks(blocks)
    return check(blocks)


if __name__ == "__main__":
    sys.exit(main())
