"""The shell examples in the docs print what the CLI prints today (``docs/regen.py`` runs them).

A failure here means a committed output is stale: run ``python docs/regen.py --update`` and
review the diff.  Blocks marked ``<!-- not checked: REASON -->`` are skipped, with their reason.
"""

import importlib.util
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_regen():
    spec = importlib.util.spec_from_file_location("docs_regen", ROOT / "docs/regen.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


regen = _load_regen()
BLOCKS = regen.collect()


@pytest.fixture(scope="module")
def fresh():
    """Every checked block run once, in parallel (each block is its own subprocesses and folder)."""
    checked = [b for b in BLOCKS if b.checked]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        return dict(zip((b.name for b in checked), ex.map(regen.run_block, checked)))


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.checked], ids=lambda b: b.name)
def test_committed_output_equals_a_fresh_run(block, fresh):
    for cmd, out in zip(block.commands, fresh[block.name]):
        committed, now = regen.expected(cmd, out)
        assert committed == now, f"stale output of `$ {cmd.text.splitlines()[0]}`: run python docs/regen.py --update"


def test_every_page_has_checked_examples_and_skips_say_why():
    for path in regen.FILES:
        blocks = [b for b in BLOCKS if b.path == path]
        assert any(b.checked for b in blocks), path
    assert all(b.skip_reason for b in BLOCKS if not b.checked)


def test_timings_are_the_only_normalisation():
    assert regen.normalise(["10100 cells in 2.80 s; max 1.57x  "]) == ["10100 cells in <t> s; max 1.57x"]
    assert regen.normalise(["latency 9.57 ± 0.44"]) == ["latency 9.57 ± 0.44"]


def test_a_truncated_output_checks_its_first_lines():
    cmd = regen.Command("simspec x", ["a", "b", "..."])
    assert regen.expected(cmd, ["a", "b", "c"]) == (["a", "b"], ["a", "b"])
    assert regen.expected(cmd, ["a", "B", "c"]) == (["a", "b"], ["a", "B"])
    assert regen.rendered(cmd, ["a", "B", "c"]) == ["$ simspec x", "a", "B", "..."]


def test_an_update_keeps_outputs_that_differ_only_in_timings():
    cmd = regen.Command("simspec heatmap", ["10100 cells in 2.80 s", "wrote x"])
    assert regen.rendered(cmd, ["10100 cells in 0.31 s", "wrote x"]) == ["$ simspec heatmap", "10100 cells in 2.80 s",
                                                                         "wrote x"]
    assert regen.rendered(cmd, ["10100 cells in 0.31 s", "wrote y"])[2] == "wrote y"


def test_the_guides_list_every_subcommand():
    """The CLI guide's table, its headings and the reference name every subcommand the parser has."""
    from simspec.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    commands = set(sub.choices)
    guide = (ROOT / "docs/guides/cli.md").read_text()
    table = set(re.findall(r"^\| `simspec (\w+)` \|", guide, re.M))
    headings = set(re.findall(r"^## `simspec (\w+)`", guide, re.M))
    assert table == commands and headings == commands
    reference = (ROOT / "docs/reference.md").read_text()
    row = next(line for line in reference.splitlines() if line.startswith("| `simspec.cli` |"))
    assert set(re.findall(r"`(\w+)`", row.split("the `simspec` command", 1)[1])) == commands
