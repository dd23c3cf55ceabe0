"""Regeneration: every experiment's quick mode reproduces its committed quick-mode numbers.

The other experiment tests check facts (orderings, monotonicity, structure) that survive many changes of
result.  Here each experiment with a ``--quick`` mode runs it into a temporary folder and its
``numbers.json`` (every number of its table, written by the experiment itself with
:func:`simspec.io.write_numbers`) is compared with the committed ``experiments/<name>/quick_reference.json``:

* text, integer and boolean cells must be equal;
* float cells must agree within ``REL = 1e-6`` relative or ``ABS = 1e-9`` absolute — the runs are
  seeded and deterministic, so this allows only for floating-point differences between platforms and
  library versions, never for a change of result.

A deliberate change of result regenerates the reference, and the diff of the JSON shows what moved::

    python experiments/<name>/run.py --quick --reference --out /tmp/<name>
"""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from simspec.io import read_numbers

ROOT = Path(__file__).resolve().parents[1]
REL, ABS = 1e-6, 1e-9
#: experiments with a quick mode, and the flags that skip work the numbers do not need
EXPERIMENTS = {"dsi_table": [], "dsi_servers": ["--no-png"], "tli_overlap": ["--no-png"], "rdk_pruning": ["--no-png"],
               "dynamic_lookahead": ["--no-png"], "serving_load": ["--no-png"],
               "roofline_check": [], "trees_and_overlap": []}


def _load(name: str):
    mod_name = f"_regen_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, ROOT / "experiments" / name / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod  # dataclasses look their module up while the script runs
    spec.loader.exec_module(mod)
    return mod


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return a == b and type(a) is type(b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def differences(ref: dict, new: dict, limit: int = 20) -> list[str]:
    """What differs between two :func:`~simspec.io.read_numbers` tables beyond the tolerance (at most ``limit``)."""
    out = []
    meta_ref = {k: v for k, v in ref.items() if k not in ("rows", "records")}
    meta_new = {k: v for k, v in new.items() if k not in ("rows", "records")}
    if meta_ref != meta_new:
        out.append(f"settings or columns differ: {meta_ref} != {meta_new}")
        return out
    if len(ref["rows"]) != len(new["rows"]):
        return [f"{len(new['rows'])} rows, the reference has {len(ref['rows'])}"]
    for i, (r, n) in enumerate(zip(ref["rows"], new["rows"])):
        for col, a, b in zip(ref["columns"], r, n):
            if not _same(a, b):
                out.append(f"row {i} ({', '.join(str(x) for x in r[:4])}), {col}: reference {a!r}, now {b!r}")
                if len(out) >= limit:
                    return out
    return out


@pytest.fixture(scope="module", params=sorted(EXPERIMENTS))
def quick_run(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp(f"regen_{name}")
    assert _load(name).main(["--quick", "--out", str(out), *EXPERIMENTS[name]]) == 0
    return name, read_numbers(out / "numbers.json")


def test_quick_run_reproduces_the_committed_numbers(quick_run):
    name, new = quick_run
    ref = read_numbers(ROOT / "experiments" / name / "quick_reference.json")
    assert ref["experiment"] == name and ref["mode"] == "quick" and ref["rows"]
    diff = differences(ref, new)
    assert not diff, (
        f"experiments/{name} --quick no longer reproduces quick_reference.json (tolerance rel {REL:g}, abs {ABS:g}):\n  "
        + "\n  ".join(diff)
        + f"\nIf the change of result is intended: python experiments/{name}/run.py --quick --reference --out /tmp/{name}"
    )


def test_every_experiment_with_a_quick_mode_has_a_reference():
    quick = {p.parent.name for p in (ROOT / "experiments").glob("*/run.py") if '"--quick"' in p.read_text()}
    assert quick == set(EXPERIMENTS)
    for name in quick:
        assert (ROOT / "experiments" / name / "quick_reference.json").is_file(), name


def test_the_comparison_catches_a_change_of_result():
    ref = read_numbers(ROOT / "experiments" / "tli_overlap" / "quick_reference.json")
    same = {**ref, "rows": [list(r) for r in ref["rows"]]}
    assert differences(ref, same) == []
    col = ref["columns"].index("tli")
    moved = {**ref, "rows": [list(r) for r in ref["rows"]]}
    moved["rows"][1][col] *= 1 + 1e-4  # a change far smaller than any result a reader would notice
    assert len(differences(ref, moved)) == 1 and "tli" in differences(ref, moved)[0]
    jitter = {**ref, "rows": [list(r) for r in ref["rows"]]}
    jitter["rows"][1][col] *= 1 + 1e-9  # floating-point noise between platforms: accepted
    assert differences(ref, jitter) == []
    counted = {**ref, "rows": [list(r) for r in ref["rows"]]}
    counted["rows"][0][ref["columns"].index("n_drafter")] += 1  # integers must match exactly
    assert len(differences(ref, counted)) == 1
