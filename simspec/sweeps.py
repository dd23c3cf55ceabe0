"""Design sweeps: a grid of scenarios, run on any executor, streamed to disk, resumable.

:func:`sweep` runs one engine (``compare`` or ``simulate``) on every row of a :class:`Grid` —
the product of some parameters, zipped with others — and writes one JSON line per finished row.

* **The same rows on any executor.** Row ``i`` gets the ``i``-th child of the sweep's
  ``SeedSequence``, so its result does not depend on the executor (none, a
  ``concurrent.futures`` pool, a Dask ``Client`` or its ``get_executor()``), on the number of
  workers or on the order rows finish in.
* **Streamed and resumable.** Each finished row is appended to ``out`` as one line; each
  finished batch is flushed and synced to disk.  ``resume=True`` reads the file, keeps the
  complete rows, drops a last line cut short by a kill, and runs only the rows that are
  missing. No row is lost or written twice.
* **Batched.** Rows travel to workers in batches (``batch``), so the per-task overhead stays
  small against the work.

The format is JSON lines — ``{"row": i, "params": {...}, "result": {...}}`` — which pandas,
polars and DuckDB read directly (``pandas.read_json(path, lines=True)``,
``polars.read_ndjson(path)``, ``duckdb.read_json(path)``; each gives ``params`` and ``result``
as nested columns); :meth:`SweepResult.to_frame` flattens it in one call, and
:meth:`SweepResult.read` reads a finished (or interrupted) file back without running anything.

>>> g = Grid(product={"acceptance": [0.6, 0.8]}, fixed={"target_ms": 30.0, "drafter_ms": 3.0, "tokens": 100})
>>> len(g), g.rows[1]
(2, {'target_ms': 30.0, 'drafter_ms': 3.0, 'tokens': 100, 'acceptance': 0.8})
>>> res = sweep(g, engine="compare", method="theory")
>>> [round(r["result"]["dsi_vs_si"], 3) for r in res.rows]
[1.299, 1.446]
>>> res.to_records()[1]["acceptance"], res.to_records()[1]["si_lookahead"]
(0.8, 6)

Rows streamed to a file read back as the same rows, without running anything:

>>> import pathlib, tempfile
>>> out = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
>>> SweepResult.read(sweep(g, engine="compare", method="theory", out=out).path).rows == res.rows
True
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ._checks import check_rng, int_at_least
from ._progress import progress_bar
from .errors import InvalidParameterError
from .records import to_frame

__all__ = ["Grid", "SweepResult", "sweep", "scenario_from_params", "load_sweep_file", "PARAMETERS"]

#: The parameters a row may set, and what they mean (the rest of a row is an error, named).
PARAMETERS = {
    "target_ms": "the target's time per forward (ms)",
    "drafter_ms": "the drafter's time per forward (ms)",
    "target_profile": "instead of target_ms: a latency profile, FILE[:MODEL] or builtin:NAME:MODEL",
    "drafter_profile": "instead of drafter_ms: a latency profile, FILE[:MODEL] or builtin:NAME:MODEL",
    "acceptance": "the acceptance rate (i.i.d., or the mean with burstiness)",
    "acceptance_trace": "instead of acceptance: a recorded trace (any format --acceptance-trace reads), "
                        "or builtin:NAME",
    "policy": "the lookahead policy: static (default), heuristic, confidence, adaptive or oracle",
    "confidence_threshold": "the confidence and adaptive policies' threshold (default 0.4)",
    "burstiness": "state autocorrelation of a two-state Markov acceptance (0: i.i.d.)",
    "tokens": "tokens to generate",
    "lookahead": "a static lookahead k, or 'best'",
    "servers": "target servers DSI may use (None: as many as needed)",
    "prompt_len": "prompt tokens",
}


@dataclass(frozen=True)
class Grid:
    """Rows of parameters: every combination of ``product``, each zipped with the aligned ``zip`` values.

    ``fixed`` holds parameters every row shares.  Rows are numbered in a fixed order (``product``
    keys in the order given, the last varying fastest; then ``zip``), which a resumed sweep
    relies on.
    """

    product: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    zip: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (*self.product, *self.zip, *self.fixed):
            if name not in PARAMETERS:
                raise InvalidParameterError(f"unknown sweep parameter {name!r}; the parameters are "
                                            f"{', '.join(PARAMETERS)}")
        both = set(self.product) & set(self.zip) | (set(self.product) | set(self.zip)) & set(self.fixed)
        if both:
            raise InvalidParameterError(f"parameter(s) {sorted(both)} appear in more than one of product, zip, fixed")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise InvalidParameterError(f"zip parameters must have equal lengths, got "
                                        f"{ {k: len(v) for k, v in self.zip.items()} }")
        for name, values in (*self.product.items(), *self.zip.items()):
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
                raise InvalidParameterError(f"sweep parameter {name!r} needs a non-empty list of values")

    @property
    def rows(self) -> list[dict[str, Any]]:
        names = list(self.product)
        combos = list(itertools.product(*(self.product[n] for n in names))) if names else [()]
        zipped = list(zip(*self.zip.values())) if self.zip else [()]
        return [{**dict(self.fixed), **dict(zip(names, c)), **dict(zip(self.zip, z))}
                for c in combos for z in zipped]

    def __len__(self) -> int:
        n = 1
        for v in self.product.values():
            n *= len(v)
        return n * (len(next(iter(self.zip.values()))) if self.zip else 1)


@functools.lru_cache(maxsize=32)
def _profile(spec: str):
    from .profiles import load_profile, profile_spec

    return load_profile(*profile_spec(spec))


@functools.lru_cache(maxsize=32)
def _trace(spec: str):
    from .traces import builtin_trace_path, read_acceptance

    return read_acceptance(builtin_trace_path(spec[len("builtin:"):]) if spec.startswith("builtin:") else spec)


def _either(p: dict, ms: str, other: str) -> None:
    if (ms in p) == (other in p):
        raise InvalidParameterError(f"a sweep row needs exactly one of {ms!r} and {other!r}; the row is {p}")


def scenario_from_params(params: Mapping[str, Any]):
    """The :class:`~simspec.Scenario` of one sweep row (profiles and traces are read once per process)."""
    from .acceptance import IIDAcceptance, MarkovAcceptance
    from .latency import ConstantLatency
    from .lookahead import AdaptiveConfidenceLookahead, ConfidenceLookahead, HeuristicLookahead, OracleLookahead
    from .scenario import Scenario

    p = dict(params)
    _either(p, "target_ms", "target_profile")
    _either(p, "drafter_ms", "drafter_profile")
    _either(p, "acceptance", "acceptance_trace")
    target = _profile(p.pop("target_profile")) if "target_profile" in p else ConstantLatency(float(p.pop("target_ms")))
    drafter = (_profile(p.pop("drafter_profile")) if "drafter_profile" in p
               else ConstantLatency(float(p.pop("drafter_ms"))))
    b = float(p.pop("burstiness", 0.0) or 0.0)
    if "acceptance_trace" in p:
        if b:
            raise InvalidParameterError("burstiness shapes a synthetic acceptance; a row with acceptance_trace "
                                        "cannot have it")
        acc = _trace(str(p.pop("acceptance_trace")))
    else:
        a = float(p.pop("acceptance"))
        acc = MarkovAcceptance.from_mean(a, b) if b else IIDAcceptance(a)
    policy = p.pop("policy", "static")
    theta = float(p.pop("confidence_threshold", 0.4))
    k = p.get("lookahead", "best")
    k_int = None if k in (None, "best") else int(k)
    if policy == "heuristic":
        p["lookahead"] = HeuristicLookahead(k_int or 5, max(k_int or 5, 200))
    elif policy == "confidence":
        p["lookahead"] = ConfidenceLookahead(theta, k_int or 20)
    elif policy == "adaptive":
        p["lookahead"] = AdaptiveConfidenceLookahead(theta, k_int or 20)
    elif policy == "oracle":
        p["lookahead"] = OracleLookahead()
    elif policy != "static":
        raise InvalidParameterError(f"policy must be static, heuristic, confidence, adaptive or oracle, got {policy!r}")
    return Scenario.from_profiles(target, drafter, acc, **p)


def _flat(prefix: str, d: Mapping[str, Any], out: dict) -> None:
    for k, v in d.items():
        if k in ("notes", "algorithm", "method"):
            continue
        if isinstance(v, list) and len(v) == 2 and k.endswith("_ci"):
            out[f"{prefix}{k[:-3]}_ci_low"], out[f"{prefix}{k[:-3]}_ci_high"] = v
        elif isinstance(v, (int, float, str)) or v is None:
            out[f"{prefix}{k}"] = v


def _run_row(engine: str, params: Mapping[str, Any], seed: np.random.SeedSequence, options: Mapping[str, Any]):
    from .compare import compare
    from .des import simulate

    s = scenario_from_params(params)
    out: dict[str, Any] = {}
    if engine == "compare":
        method = options.get("method", "montecarlo")
        kw = {"replications": options.get("replications", 200), "rng": seed} if method == "montecarlo" else {}
        extra = tuple(options.get("extra", ()))
        d = compare(s, method, extra=extra, **kw).to_dict()
        for alg in ("nonsi", "si", "dsi") + extra:
            _flat(f"{alg}_", d[alg], out)
        out.update(d["speedup"])
        for k, (lo, hi) in d.get("speedup_ci", {}).items():
            out[f"{k}_ci_low"], out[f"{k}_ci_high"] = lo, hi
    else:
        res = simulate(s, options.get("algorithm", "dsi"), replications=options.get("replications", 20), rng=seed)
        _flat("", res.to_dict(), out)
    return out


def _run_batch(engine, batch, options):
    return [(i, params, _run_row(engine, params, seed, options)) for i, params, seed in batch]


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep, in row order: ``{"row", "params", "result"}``."""

    rows: tuple[dict[str, Any], ...]
    path: str | None = None

    @classmethod
    def read(cls, path: str | os.PathLike) -> "SweepResult":
        """The complete rows of a sweep's JSON-lines file, in row order (a line cut short by a kill is skipped).

        The file is only read; rows still missing from an interrupted sweep are simply absent.
        """
        p = Path(path)
        if not p.is_file():
            raise InvalidParameterError(f"no sweep rows file {p}")
        done = _read_done(p, tidy=False)
        return cls(tuple(done[i] for i in sorted(done)), str(p))

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per row: ``row``, the parameters, then the results."""
        return [{"row": r["row"], **r["params"], **r["result"]} for r in self.rows]

    def to_frame(self):
        """One row per sweep row: its parameters, then its results (needs pandas)."""
        return to_frame(self.to_records())


def _read_done(path: Path, tidy: bool = True) -> dict[int, dict]:
    """The complete rows already in ``path``; a last line cut short by a kill is dropped (with ``tidy``, the file
    is rewritten without it)."""
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    keep = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            i = int(rec["row"])
        except (ValueError, KeyError, TypeError):
            if n == len(lines) - 1 or (n == len(lines) - 2 and not lines[-1].strip()):
                continue  # the row being written when the sweep was killed
            raise InvalidParameterError(f"{path}:{n + 1}: not a sweep row; give another --out or remove the file")
        if i in done:
            raise InvalidParameterError(f"{path}:{n + 1}: row {i} appears twice")
        done[i] = rec
        keep.append(line)
    clean = b"".join(line + b"\n" for line in keep)
    if tidy and clean != raw:
        from .io import atomic_write_text

        atomic_write_text(path, clean.decode("utf-8"))
    return done


def sweep(grid: Grid, *, engine: str = "compare", method: str = "montecarlo", algorithm: str = "dsi",
          replications: int | None = None, rng=None, executor: Executor | None = None, out=None,
          resume: bool = False, batch: int = 4, progress: bool = False, extra=()) -> SweepResult:
    """Run ``engine`` on every row of ``grid``; see the module docstring.

    ``engine``: ``"compare"`` (``method`` ``"theory"`` or ``"montecarlo"``) or ``"simulate"``
    (``algorithm``); ``replications`` per row (defaults: 200 for the Monte Carlo, 20 for the
    discrete-event engine); ``rng``: an int seed or a ``SeedSequence`` (row ``i`` gets its
    ``i``-th child); ``executor``: a ``concurrent.futures.Executor`` or a Dask ``Client``
    (``None``: this process); ``out``: a ``.jsonl`` file the rows stream into (its folder must
    exist); ``resume``: keep the complete rows already in ``out`` and run the rest (without it,
    an existing ``out`` is an error); ``batch``: rows per task; ``extra``: with ``compare``, the
    extra columns of :func:`simspec.compare` (``"tree"``, ``"pearl"``, ``"pipeline"``), each row then
    carrying ``<name>_...`` fields and their speedups.
    """
    if engine not in ("compare", "simulate"):
        raise InvalidParameterError(f"engine must be 'compare' or 'simulate', got {engine!r}")
    if engine == "compare" and method not in ("theory", "montecarlo"):
        raise InvalidParameterError(f"method must be 'theory' or 'montecarlo', got {method!r}")
    batch = int_at_least("batch", batch, 1)
    if executor is not None and not isinstance(executor, Executor):
        if not hasattr(executor, "get_executor"):
            raise InvalidParameterError(f"executor must be a concurrent.futures.Executor or a Dask Client, got "
                                        f"{type(executor).__name__}")
        # a Dask Client: its concurrent.futures face; pure=False skips hashing every batch's arguments
        executor = executor.get_executor(pure=False)
    check_rng(rng)
    if isinstance(rng, np.random.Generator):
        raise InvalidParameterError("give the sweep an int seed or a SeedSequence, not a Generator: a row's seed "
                                    "must not depend on what ran before it (resume, executors)")
    ss = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    rows = grid.rows
    seeds = [np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (i,), pool_size=ss.pool_size)
             for i in range(len(rows))]
    options = {"method": method, "algorithm": algorithm}
    if extra:
        from .compare import EXTRAS

        extra = tuple(x.strip() for x in extra.split(",")) if isinstance(extra, str) else tuple(extra)
        unknown = [x for x in extra if x not in EXTRAS]
        if engine != "compare" or unknown:
            raise InvalidParameterError(f"extra takes {', '.join(EXTRAS)} with engine 'compare', got {extra!r}")
        options["extra"] = extra
    if replications is not None:
        options["replications"] = int_at_least("replications", replications, 2 if engine == "compare" else 1)
    for params in rows[:1]:
        scenario_from_params(params)  # a bad grid fails before any work
    path = None
    done: dict[int, dict] = {}
    if out is not None:
        path = Path(out)
        if path.suffix != ".jsonl":
            raise InvalidParameterError(f"out {path} must end in .jsonl")
        if not path.resolve().parent.is_dir():
            raise InvalidParameterError(f"out {path}: the folder {path.resolve().parent} does not exist")
        if path.exists() and not resume:
            raise InvalidParameterError(f"out {path} exists; pass resume=True (--resume) to finish it, or another file")
        done = _read_done(path)
        for i, rec in done.items():
            if i >= len(rows) or rec.get("params") != json.loads(json.dumps(rows[i])):
                raise InvalidParameterError(f"{path}: row {i} was run with other parameters than this grid's; "
                                            "resume with the same sweep, or give another file")
    todo = [(i, rows[i], seeds[i]) for i in range(len(rows)) if i not in done]
    batches = [todo[j:j + batch] for j in range(0, len(todo), batch)]
    results = dict(done)
    bar = progress_bar(len(todo), "sweep", progress, unit="row", tty_only=False)
    fh = open(path, "a", encoding="utf-8") if path is not None else None
    try:
        def record(items):
            for i, params, result in items:
                line = json.dumps({"row": i, "params": dict(params), "result": result})
                results[i] = json.loads(line)  # exactly what a resumed sweep reads back
                if fh is not None:
                    fh.write(line + "\n")
            if fh is not None:  # one sync per finished batch; a kill can cut only the last line
                fh.flush()
                os.fsync(fh.fileno())
            bar.update(len(items))

        if executor is None:
            for b in batches:
                record(_run_batch(engine, b, options))
        else:
            futures = [executor.submit(_run_batch, engine, b, options) for b in batches]
            for fut in as_completed(futures):
                record(fut.result())
    finally:
        if fh is not None:
            fh.close()
        bar.close()
    return SweepResult(tuple(results[i] for i in range(len(rows))), str(path) if path is not None else None)


def load_sweep_file(path: str | os.PathLike) -> tuple[Grid, dict[str, Any]]:
    """A sweep file (TOML): ``[grid.product]``, ``[grid.zip]``, ``[grid.fixed]`` and ``[run]`` options.

    ``[run]`` may set ``engine``, ``method``, ``algorithm``, ``replications``, ``seed``, ``batch``.
    """
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidParameterError(f"no sweep file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{path}: not valid TOML ({exc})") from None
    g = data.get("grid", {})
    unknown = set(data) - {"grid", "run"} | set(g) - {"product", "zip", "fixed"}
    if unknown:
        raise InvalidParameterError(f"{path}: unknown section(s) {sorted(unknown)}; a sweep file has [grid.product], "
                                    "[grid.zip], [grid.fixed] and [run]")
    run = dict(data.get("run", {}))
    bad = set(run) - {"engine", "method", "algorithm", "replications", "seed", "batch", "extra"}
    if bad:
        raise InvalidParameterError(f"{path}: unknown [run] key(s) {sorted(bad)}")
    try:
        grid = Grid(g.get("product", {}), g.get("zip", {}), g.get("fixed", {}))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{path}: {exc}") from None
    return grid, run
