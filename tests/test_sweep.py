"""simspec.sweep: grids, the same rows on any executor, streaming to disk, resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from simspec.cli import main
from simspec.errors import InvalidParameterError
from simspec.sweeps import Grid, SweepResult, load_sweep_file, sweep

GRID = Grid(product={"acceptance": [0.6, 0.8, 0.9], "drafter_ms": [3.0, 6.0]}, fixed={"target_ms": 30.0, "tokens": 120})


def test_grid_rows_product_zip_fixed():
    g = Grid(product={"acceptance": [0.6, 0.8], "tokens": [10, 20]}, zip={"target_ms": [30.0, 40.0],
             "drafter_ms": [3.0, 4.0]}, fixed={"servers": 4})
    rows = g.rows
    assert len(g) == len(rows) == 8
    assert rows[0] == {"servers": 4, "acceptance": 0.6, "tokens": 10, "target_ms": 30.0, "drafter_ms": 3.0}
    assert rows[1] == {"servers": 4, "acceptance": 0.6, "tokens": 10, "target_ms": 40.0, "drafter_ms": 4.0}
    assert rows[2]["tokens"] == 20 and rows[-1] == {"servers": 4, "acceptance": 0.8, "tokens": 20,
                                                    "target_ms": 40.0, "drafter_ms": 4.0}
    with pytest.raises(InvalidParameterError, match="unknown sweep parameter 'acceptence'"):
        Grid(product={"acceptence": [0.5]})
    with pytest.raises(InvalidParameterError, match="equal lengths"):
        Grid(zip={"target_ms": [1.0, 2.0], "drafter_ms": [1.0]})
    with pytest.raises(InvalidParameterError, match="more than one of"):
        Grid(product={"tokens": [1]}, fixed={"tokens": 2})
    with pytest.raises(InvalidParameterError, match="non-empty list"):
        Grid(product={"tokens": []})


def test_the_same_rows_on_every_executor_and_batch_size():
    serial = sweep(GRID, replications=20, rng=3)
    assert [r["row"] for r in serial.rows] == list(range(6))
    with ProcessPoolExecutor(2) as ex:
        pooled = sweep(GRID, replications=20, rng=3, executor=ex, batch=1)
    with ThreadPoolExecutor(3) as ex:
        threaded = sweep(GRID, replications=20, rng=3, executor=ex, batch=5)
    assert pooled.rows == serial.rows == threaded.rows
    assert sweep(GRID, replications=20, rng=4).rows != serial.rows
    frame = serial.to_frame()
    assert len(frame) == 6 and {"acceptance", "drafter_ms", "si_latency_per_token_ms", "dsi_vs_si"} <= set(frame)


def test_rows_stream_to_disk_and_a_cut_line_is_dropped_on_resume(tmp_path):
    out = tmp_path / "rows.jsonl"
    full = sweep(GRID, replications=20, rng=3, out=out)
    lines = out.read_text().splitlines()
    assert [json.loads(x)["row"] for x in lines] == list(range(6))
    with pytest.raises(InvalidParameterError, match="exists; pass resume=True"):
        sweep(GRID, replications=20, rng=3, out=out)
    # keep three rows and half of the fourth, as a kill during a write leaves it
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    cut = out.read_text()
    assert SweepResult.read(out).rows == full.rows[:3] and out.read_text() == cut  # reading leaves the file be
    again = sweep(GRID, replications=20, rng=3, out=out, resume=True)
    assert again.rows == full.rows
    assert sorted(json.loads(x)["row"] for x in out.read_text().splitlines()) == list(range(6))
    # resuming with another grid is refused
    with pytest.raises(InvalidParameterError, match="other parameters"):
        sweep(Grid(product={"acceptance": [0.5, 0.8, 0.9], "drafter_ms": [3.0, 6.0]},
                   fixed={"target_ms": 30.0, "tokens": 120}), replications=20, rng=3, out=out, resume=True)


KILL_SWEEP = ('[grid.product]\nacceptance = [0.6, 0.7, 0.8, 0.9]\ndrafter_ms = [2.0, 4.0, 6.0]\n'
              '[grid.fixed]\ntarget_ms = 30.0\ntokens = 400\n'
              '[run]\nengine = "simulate"\nalgorithm = "dsi"\nreplications = 30\nseed = 5\nbatch = 1\n')


def _kill_after_two_rows(cmd, rows: Path) -> list[str]:
    """Run ``simspec CMD`` in a child process, SIGKILL it once two rows are on disk; the lines it left."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from simspec.cli import main; sys.exit(main())", *cmd],
                            env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.time() + 60
    while time.time() < deadline and (not rows.exists() or len(rows.read_text().splitlines()) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = rows.read_text().splitlines()
    assert 2 <= len(before) < 12, "the sweep should be killed part-way"
    return before


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _assert_complete(rows: Path, sweep_file: Path, before: list[str]) -> None:
    lines = rows.read_text().splitlines()
    complete = before if _parses(before[-1]) else before[:-1]  # the kill may cut the last line
    assert lines[:len(complete)] == complete  # the rows of the killed run are kept, not run again
    got = [json.loads(x) for x in lines]
    assert sorted(r["row"] for r in got) == list(range(12))  # none lost, none twice
    grid, run = load_sweep_file(sweep_file)
    ref = sweep(grid, engine="simulate", algorithm="dsi", replications=30, rng=5)
    assert sorted(got, key=lambda r: r["row"]) == list(ref.rows)


def test_a_killed_sweep_resumes_with_nothing_lost_or_doubled(tmp_path):
    """A real kill (SIGKILL) in the middle of a sweep, then --resume."""
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(KILL_SWEEP)
    out = tmp_path / "out"
    rows = out / "rows.jsonl"
    before = _kill_after_two_rows(["sweep", str(sweep_file), "--out", str(out)], rows)
    assert main(["sweep", str(sweep_file), "--out", str(out), "--resume"]) == 0
    _assert_complete(rows, sweep_file, before)


def test_sweep_files_and_the_command_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid.product]\nacceptance = [0.5\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    bad.write_text("[grid.product]\nacceptance = [0.5]\n[runs]\nseed = 1\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "unknown section(s) ['runs']" in capsys.readouterr().err
    good = Path("examples/sweeps/dsi_design.toml")
    assert main(["sweep", str(good), "--out", str(tmp_path / "a"), "--executor", "processes:2"]) == 0
    assert main(["sweep", str(good), "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert (tmp_path / "a" / "rows.jsonl").read_text().splitlines() != []
    a = sorted((json.loads(x) for x in (tmp_path / "a" / "rows.jsonl").read_text().splitlines()), key=lambda r: r["row"])
    b = [json.loads(x) for x in (tmp_path / "b" / "rows.jsonl").read_text().splitlines()]
    assert a == b and len(b) == 12
    assert main(["sweep", str(good), "--out", str(tmp_path / "c"), "--executor", "threads"]) == 2
    assert "--executor must be local" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dask_cluster():
    """Two small Dask workers (processes, one thread each), shared by the Dask tests."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def test_a_dask_cluster_gives_the_same_rows(dask_cluster, tmp_path, capsys):
    """The rows of a serial run, on a process pool, a Dask Client, its executor, and `--executor dask://`."""
    from dask.distributed import Client

    serial = sweep(GRID, replications=20, rng=3)
    with ProcessPoolExecutor(2) as ex:
        assert sweep(GRID, replications=20, rng=3, executor=ex).rows == serial.rows
    with Client(dask_cluster) as client:
        assert sweep(GRID, replications=20, rng=3, executor=client.get_executor(), batch=1).rows == serial.rows
        assert sweep(GRID, replications=20, rng=3, executor=client, batch=4).rows == serial.rows
    file = tmp_path / "grid.toml"
    file.write_text('[grid.product]\nacceptance = [0.6, 0.8, 0.9]\ndrafter_ms = [3.0, 6.0]\n'
                    '[grid.fixed]\ntarget_ms = 30.0\ntokens = 120\n[run]\nreplications = 20\nseed = 3\nbatch = 2\n')
    address = dask_cluster.scheduler_address.removeprefix("tcp://")
    assert main(["sweep", str(file), "--out", str(tmp_path / "d"), "--executor", f"dask://{address}"]) == 0
    capsys.readouterr()
    assert SweepResult.read(tmp_path / "d" / "rows.jsonl").rows == serial.rows
    with pytest.raises(InvalidParameterError, match="a concurrent.futures.Executor or a Dask Client"):
        sweep(GRID, executor=object())


def test_a_sweep_on_dask_killed_mid_run_resumes_with_nothing_lost_or_doubled(dask_cluster, tmp_path):
    """SIGKILL of the process driving a Dask sweep; --resume on the same cluster finishes it."""
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(KILL_SWEEP)
    rows = tmp_path / "out" / "rows.jsonl"
    address = dask_cluster.scheduler_address.removeprefix("tcp://")
    cmd = ["sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--executor", f"dask://{address}"]
    before = _kill_after_two_rows(cmd, rows)
    assert main([*cmd, "--resume"]) == 0
    _assert_complete(rows, sweep_file, before)


def test_rows_with_profiles_traces_and_policies():
    import warnings

    from simspec import ConstantLatency, HeuristicLookahead, Scenario, simulate
    from simspec.profiles import builtin_profile
    from simspec.sweeps import scenario_from_params
    from simspec.traces import builtin_trace

    pair = {"target_profile": "builtin:cpu-real-pair:gemma3-270m", "drafter_profile": "builtin:cpu-real-pair:smollm2-135m",
            "acceptance_trace": "builtin:cpu-real-pair", "tokens": 64}
    g = Grid(product={"policy": ["static", "heuristic", "oracle"]}, fixed=pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short prompts read the profiles' nearest context
        res = sweep(g, engine="simulate", algorithm="si", replications=3, rng=2)
        ref = simulate(Scenario.from_profiles(builtin_profile("cpu-real-pair", "gemma3-270m"),
                                              builtin_profile("cpu-real-pair", "smollm2-135m"),
                                              builtin_trace("cpu-real-pair"), tokens=64,
                                              lookahead=HeuristicLookahead()),
                       "si", replications=3, rng=res_seed(2, 1))
    assert [r["result"]["lookahead"] for r in res.rows] == [3, "heuristic k0=5", "oracle"]  # static: the best k
    assert res.rows[1]["result"]["latency_ms"] == pytest.approx(ref.latency_ms.mean)
    s = scenario_from_params({"target_ms": 30.0, "drafter_ms": 3.0, "acceptance": 0.8, "policy": "confidence",
                              "confidence_threshold": 0.6, "lookahead": 8})
    assert s.lookahead.name == "confidence θ=0.6 k_max=8" and isinstance(s.target, ConstantLatency)
    with pytest.raises(InvalidParameterError, match="exactly one of 'target_ms' and 'target_profile'"):
        scenario_from_params({"drafter_ms": 3.0, "acceptance": 0.8})
    with pytest.raises(InvalidParameterError, match="policy must be"):
        scenario_from_params({"target_ms": 30.0, "drafter_ms": 3.0, "acceptance": 0.8, "policy": "disco"})


def res_seed(seed: int, row: int):
    """The seed sweep gives row ``row``: the row-th child of SeedSequence(seed)."""
    import numpy as np

    ss = np.random.SeedSequence(seed)
    return np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (row,), pool_size=ss.pool_size)


@pytest.mark.parametrize("path", sorted(Path("examples/sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_the_example_sweep_files_run(path, tmp_path):
    grid, run = load_sweep_file(path)
    assert len(grid) >= 2 and run["engine"] in ("compare", "simulate")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 0
    assert len((tmp_path / "o" / "rows.jsonl").read_text().splitlines()) == len(grid)


def test_sweep_extra_columns_and_their_refusals(tmp_path):
    """extra=("tree", "pearl"): each row carries the extras' fields and speedups, equal to compare's own."""
    from simspec import compare
    from simspec.sweeps import scenario_from_params
    grid = Grid(product={"acceptance": [0.6, 0.8]}, fixed={"target_ms": 30.0, "drafter_ms": 3.0, "tokens": 300})
    res = sweep(grid, method="theory", extra="tree,pearl")
    for row in res.rows:
        d = compare(scenario_from_params(row["params"]), "theory", extra=("tree", "pearl")).to_dict()
        assert row["result"]["tree_latency_per_token_ms"] == d["tree"]["latency_per_token_ms"]
        assert row["result"]["pearl_vs_si"] == d["speedup"]["pearl_vs_si"]
    with pytest.raises(InvalidParameterError, match="extra takes"):
        sweep(grid, method="theory", extra=("trees",))
    with pytest.raises(InvalidParameterError, match="extra takes"):
        sweep(grid, engine="simulate", extra=("tree",))
