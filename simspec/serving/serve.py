"""``serve``: speculative decoding under load — non-SI and SI side by side on the same requests.

Each replication draws one workload (arrivals, prompt and output lengths) and
each request's acceptance outcomes, then runs every algorithm on exactly those
(common random numbers); replication ``i`` uses the ``i``-th ``SeedSequence``
child of ``rng``, split into a workload, an acceptance and a latency stream.
Intervals count replications — the independent units; the requests inside one
run share its queue and are not independent.

>>> from simspec import ConstantLatency, IIDAcceptance
>>> from simspec.serving import Batching, PoissonArrivals, Workload, serve
>>> w = Workload(PoissonArrivals(rate=0.5), prompt_len=64, output_len=64, requests=30)
>>> res = serve(w, ConstantLatency(30.0, ttft_ms=60.0), ConstantLatency(3.0, ttft_ms=6.0), IIDAcceptance(0.8),
...             lookahead=4, batching=Batching(max_batch=8), replications=3, rng=0)
>>> round(res.speedup["si_vs_nonsi"].mean, 2), res.metrics["si"]["ttft_p50_ms"].mean
(2.28, 60.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._checks import check_rng, int_at_least
from .._progress import progress_bar
from ..acceptance import AcceptanceProcess
from ..batch_latency import as_batch_latency
from ..deployment import Overheads
from ..errors import InvalidParameterError, UnsupportedScenarioError
from ..lookahead import LookaheadPolicy, StaticLookahead
from ..records import Estimate, TableRecord, format_number, to_frame
from .batching import Batching, BatchSizeLookahead
from .dsi import kv_slots, run_dsi_engine
from .engine import run_engine
from .workload import RequestTable, RequestTrace, Workload, as_workload

__all__ = ["serve", "ServingResult", "SLO", "SERVING_METRICS", "ALGORITHMS"]

ALGORITHMS = ("nonsi", "si", "dsi", "tree")
_NAMES = {"nonsi": "non-SI", "si": "SI", "dsi": "DSI", "tree": "tree SI"}

#: Per-replication metrics, with their units and their labels in the printed table.
SERVING_METRICS = {
    "ttft_p50_ms": ("ms", "TTFT p50 (ms)"), "ttft_p90_ms": ("ms", "TTFT p90 (ms)"),
    "ttft_p99_ms": ("ms", "TTFT p99 (ms)"),
    "tpot_p50_ms": ("ms", "TPOT p50 (ms)"), "tpot_p90_ms": ("ms", "TPOT p90 (ms)"),
    "tpot_p99_ms": ("ms", "TPOT p99 (ms)"),
    "e2e_mean_ms": ("ms", "end-to-end mean (ms)"), "e2e_p50_ms": ("ms", "end-to-end p50 (ms)"),
    "e2e_p90_ms": ("ms", "end-to-end p90 (ms)"), "e2e_p99_ms": ("ms", "end-to-end p99 (ms)"),
    "throughput_tok_s": ("tok/s", "throughput (tokens/s)"),
    "goodput_req_s": ("req/s", "goodput (requests/s in SLO)"),
    "gpus": ("", "GPUs"),
    "gpu_seconds_per_token": ("GPU-s", "GPU-seconds per token"),
    "mean_batch": ("", "mean batch (sequences/step)"),
    "tokens_per_step": ("", "tokens per sequence-step"),
    "preemptions": ("", "preemptions"),
}

_RECORD_FIELDS = ("replica", "arrival_ms", "prompt_len", "output_len", "queue_ms", "ttft_ms", "tpot_ms", "e2e_ms",
                  "finish_ms", "preemptions", "rounds", "drafts", "accepted")


@dataclass(frozen=True)
class SLO:
    """Latency targets a request must meet to count in goodput: TTFT and TPOT at most these (ms)."""

    ttft_ms: float = math.inf
    tpot_ms: float = math.inf

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "tpot_ms"):
            v = float(getattr(self, name))
            if not (v > 0):
                raise InvalidParameterError(f"SLO {name} must be > 0 (or inf for no target), got {v!r}")
            object.__setattr__(self, name, v)


def _tree_spec(tree, law, acceptance):
    """Tree SI's tree and law (``simspec.des.tree.TreeSpec``): the tree is required, the law defaults to the
    acceptance process's mean rate at every rank."""
    from ..des.tree import TreeSpec
    from ..trees import PositionalTreeAcceptance, TokenTree

    if not isinstance(tree, TokenTree):
        raise InvalidParameterError(f"'tree' under load needs tree=TokenTree(...) (e.g. TokenTree.k_ary([2, 2, 1])), "
                                    f"got {tree!r}")
    if tree.size == 0:
        raise InvalidParameterError("the tree is empty (plain decoding): serve 'nonsi' instead, or give a tree")
    if law is None:
        law = PositionalTreeAcceptance.from_chain_rate(float(acceptance.mean))
    return TreeSpec(tree, law)


def _lookahead(value) -> LookaheadPolicy | BatchSizeLookahead:
    if isinstance(value, (LookaheadPolicy, BatchSizeLookahead)):
        return value
    if isinstance(value, Mapping):
        return BatchSizeLookahead(value)
    return StaticLookahead(int_at_least("lookahead", value, 1, "propose at least one draft per round"))


def _replication_metrics(eng, table: RequestTable, speculative: bool, cfg: Batching, slo: SLO):
    reqs = eng.requests
    arrival = table.arrival_ms
    first = np.array([r.first_token for r in reqs])
    finish = np.array([r.finish for r in reqs])
    out_len = table.output_len
    ttft = first - arrival
    tpot = (finish - first) / out_len
    e2e = finish - arrival
    span = float(finish.max() - arrival.min())
    tokens = int(out_len.sum())
    gpus = cfg.gpus(speculative)
    steps = sum(rep.steps for rep in eng.replicas)
    seq_steps = sum(rep.batch_sum for rep in eng.replicas)
    rounds = sum(r.rounds for r in reqs)
    good = int(np.count_nonzero((ttft <= slo.ttft_ms) & (tpot <= slo.tpot_ms)))
    m = {
        "ttft_p50_ms": np.percentile(ttft, 50), "ttft_p90_ms": np.percentile(ttft, 90),
        "ttft_p99_ms": np.percentile(ttft, 99),
        "tpot_p50_ms": np.percentile(tpot, 50), "tpot_p90_ms": np.percentile(tpot, 90),
        "tpot_p99_ms": np.percentile(tpot, 99),
        "e2e_mean_ms": float(e2e.mean()), "e2e_p50_ms": np.percentile(e2e, 50), "e2e_p90_ms": np.percentile(e2e, 90),
        "e2e_p99_ms": np.percentile(e2e, 99),
        "throughput_tok_s": tokens / span * 1000.0 if span > 0 else math.inf,
        "goodput_req_s": good / span * 1000.0 if span > 0 else math.inf,
        "gpus": gpus,
        "gpu_seconds_per_token": gpus * span / 1000.0 / tokens,
        "mean_batch": seq_steps / steps if steps else 0.0,
        "tokens_per_step": tokens / rounds if speculative and rounds else 1.0,
        "preemptions": eng.preemptions,
    }
    rec = {
        "replica": np.array([r.replica for r in reqs]), "arrival_ms": arrival, "prompt_len": table.prompt_len,
        "output_len": out_len, "queue_ms": np.array([r.wait_ms for r in reqs]), "ttft_ms": ttft, "tpot_ms": tpot,
        "e2e_ms": e2e, "finish_ms": finish, "preemptions": np.array([r.preemptions for r in reqs]),
        "rounds": np.array([r.rounds for r in reqs]), "drafts": np.array([r.drafts for r in reqs]),
        "accepted": np.array([r.accepted for r in reqs]),
    }
    return {k: float(v) for k, v in m.items()}, rec


@dataclass(frozen=True, eq=False)
class ServingResult(TableRecord):
    """Serving metrics of each algorithm (estimates over replications), speedups, and per-request records.

    ``metrics[algorithm][name]`` is an :class:`~simspec.Estimate` (names: :data:`SERVING_METRICS`);
    ``speedup`` holds ``si_vs_nonsi`` (mean end-to-end latency, non-SI over SI), ``si_vs_nonsi_tpot``
    (median TPOT) and ``si_vs_nonsi_throughput`` (SI's throughput over non-SI's), paired per replication,
    and the same three for every other pair served (``dsi_vs_nonsi``, ``dsi_vs_si``, ``tree_vs_nonsi``,
    ``tree_vs_si``).
    ``per_replication[algorithm]`` is the raw metrics, one dict per replication; :meth:`records` the
    requests, one dict each; :meth:`to_frame` either as a pandas table.
    """

    metrics: Mapping[str, Mapping[str, Estimate]]
    speedup: Mapping[str, Estimate]
    per_replication: Mapping[str, Sequence[Mapping[str, float]]]
    request_columns: Mapping[str, Sequence[Mapping[str, np.ndarray]]] = field(repr=False)
    scenario: Mapping[str, Any] = field(default_factory=dict)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    @property
    def replications(self) -> int:
        return len(next(iter(self.per_replication.values())))

    def records(self):
        """Every request of every algorithm and replication, one dict each."""
        for alg, reps in self.request_columns.items():
            for i, cols in enumerate(reps):
                n = cols["arrival_ms"].size
                lists = {k: cols[k].tolist() for k in _RECORD_FIELDS}
                for j in range(n):
                    row = {"algorithm": alg, "replication": i, "request": j}
                    row.update({k: lists[k][j] for k in _RECORD_FIELDS})
                    yield row

    def to_records(self) -> list[dict[str, Any]]:
        """One row per algorithm: each metric's mean and interval, the speedups, the scenario."""
        rows = []
        for alg, ms in self.metrics.items():
            row: dict[str, Any] = {"algorithm": alg}
            for name, e in ms.items():
                row[name], row[name + "_ci_low"], row[name + "_ci_high"] = e.mean, e.low, e.high
            for name, e in self.speedup.items():
                if name.startswith(alg + "_vs_"):
                    row["speedup" + name[len(alg):]] = e.mean
            row.update({"scenario_" + k: v for k, v in self.scenario.items()})
            rows.append(row)
        return rows

    def to_frame(self, per_request: bool = False):
        """A pandas DataFrame: one row per algorithm, or with ``per_request`` one per request."""
        return to_frame(list(self.records()) if per_request else self.to_records())

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": dict(self.scenario),
            "replications": self.replications,
            "metrics": {a: {k: e.to_dict() for k, e in ms.items()} for a, ms in self.metrics.items()},
            "speedup": {k: e.to_dict() for k, e in self.speedup.items()},
        }

    def _table(self):
        sc = self.scenario
        head = (f"serving: {sc.get('workload', '')}; {sc.get('batching', '')}; lookahead {sc.get('lookahead', '-')}; "
                + (f"{sc['tree']}; " if sc.get("tree") else "")
                + f"{self.replications} replication(s)\ntarget {sc.get('target')}"
                + (f", drafter {sc['drafter']}, acceptance {sc['acceptance']}"
                   if any(a != "nonsi" for a in self.metrics) else ""))
        headers = [_NAMES.get(a, a) for a in self.metrics]
        rows = []
        for name, (_, label) in SERVING_METRICS.items():
            if name == "goodput_req_s" and not sc.get("slo"):
                continue
            if name == "tokens_per_step":
                rows.append((label, [self.metrics[a][name] if a != "nonsi" else None for a in self.metrics]))
                continue
            rows.append((label, [self.metrics[a][name] for a in self.metrics]))
        notes = []
        for pair in ("si_vs_nonsi", "dsi_vs_nonsi", "dsi_vs_si", "tree_vs_nonsi", "tree_vs_si"):
            if pair not in self.speedup:
                continue
            fast, slow = pair.split("_vs_")
            parts = [f"{label} {self.speedup[pair + suffix]}" for suffix, label in
                     (("", "mean end-to-end latency"), ("_tpot", "median TPOT"), ("_throughput", "throughput"))]
            notes.append(f"{_NAMES[fast]} vs {_NAMES[slow]}: " + ", ".join(parts))
        if "dsi" in self.metrics:
            notes.append("DSI: no non-SI chain; one drafter GPU per target server, shared by the running requests "
                         "(each draft is a batched drafter forward)"
                         + ("; every server holds every running request's KV cache, reserved at admission"
                            if "KV" in sc.get("batching", "") else ""))
        notes.append(f"intervals: 95% over {self.replications} independent replications of the workload"
                     + ("; the requests are replayed from a trace, so they cover acceptance and latency only"
                        if sc.get("trace") else ""))
        return head, headers, rows, notes


def _describe_workload(w) -> str:
    if isinstance(w, RequestTrace):
        return f"{w.requests} requests replayed from {w.source}"
    arr = w.arrivals
    kind = type(arr).__name__.replace("Arrivals", "")
    extra = f", cv {format_number(arr.cv)}" if hasattr(arr, "cv") else ""
    return (f"{w.requests} requests, {kind} arrivals at {format_number(arr.rate)}/s{extra}, prompt {w.prompt_len}, "
            f"output {w.output_len}")


def _check_fits(table: RequestTable, cfg: Batching, speculative: bool, tree_nodes: int = 0,
                dsi_slots: int = 0) -> None:
    if not cfg.chunked_prefill and int(table.prompt_len.max()) > cfg.max_tokens_per_step:
        raise InvalidParameterError(
            f"a prompt of {int(table.prompt_len.max())} tokens exceeds max_tokens_per_step = "
            f"{cfg.max_tokens_per_step}: raise max_tokens_per_step or set chunked_prefill=True")
    if tree_nodes + 1 > cfg.max_tokens_per_step:
        raise InvalidParameterError(
            f"a tree of {tree_nodes} nodes is verified in a forward of {tree_nodes + 1} tokens, past "
            f"max_tokens_per_step = {cfg.max_tokens_per_step}: raise max_tokens_per_step or give a smaller tree")
    if cfg.kv_blocks is not None:
        # a tree's round writes all its nodes, past the end of the output when its levels fit but it is wide
        worst = int((table.prompt_len + table.output_len).max()) + tree_nodes
        need = cfg.blocks_for(worst, speculative)
        if need > cfg.kv_blocks:
            raise InvalidParameterError(
                f"the KV cache holds {cfg.kv_blocks} blocks of {cfg.block_size} tokens, but one request of "
                f"{worst} tokens (prompt + output) needs {need}: raise kv_blocks or shorten the requests")
        if dsi_slots:
            # DSI reserves a request's whole sequence and one task's slots when it admits it
            reserve = cfg.blocks_for(int((table.prompt_len + table.output_len).max()) + dsi_slots)
            if reserve > cfg.kv_blocks:
                raise InvalidParameterError(
                    f"under DSI a request reserves its prompt, output and {dsi_slots} slots of one task: "
                    f"{reserve} blocks, but the KV cache holds {cfg.kv_blocks}: raise kv_blocks or shorten the "
                    "requests")


def serve(
    workload: Workload | RequestTrace | RequestTable,
    target,
    drafter=None,
    acceptance: AcceptanceProcess | None = None,
    *,
    lookahead: int | LookaheadPolicy | BatchSizeLookahead | Mapping[int, int] = 4,
    algorithms: Sequence[str] = ("nonsi", "si"),
    batching: Batching | None = None,
    overheads: Overheads | None = None,
    slo: SLO | None = None,
    replications: int = 1,
    rng: int | np.random.SeedSequence | None = None,
    progress: bool = False,
    tree=None,
    tree_acceptance=None,
) -> ServingResult:
    """Serve the same requests with each algorithm; metrics with intervals over ``replications``.

    ``target``/``drafter``: latency models, single-sequence (wrapped by
    :class:`~simspec.batch_latency.BatchedLatency`) or batch-aware
    (:class:`~simspec.batch_latency.BatchLatencyModel`).  ``lookahead``: SI's
    ``k`` — an int, a lookahead policy (one controller per request), a
    :class:`BatchSizeLookahead` or a ``{batch: k}`` mapping.  ``algorithms``:
    any of ``"nonsi"``, ``"si"``, ``"dsi"`` and ``"tree"`` (tree SI: ``tree``, a
    :class:`~simspec.TokenTree`, verified whole each round, its siblings accepted by
    ``tree_acceptance``, by default ``PositionalTreeAcceptance.from_chain_rate`` of the
    acceptance process's mean).
    """
    w = as_workload(workload)
    algorithms = tuple(algorithms)
    bad = [a for a in algorithms if a not in ALGORITHMS]
    if bad or not algorithms or len(set(algorithms)) != len(algorithms):
        raise InvalidParameterError(f"algorithms must be distinct names among {ALGORITHMS}, got {algorithms!r}")
    target_b = as_batch_latency("target", target)
    speculative = "si" in algorithms or "dsi" in algorithms or "tree" in algorithms
    drafter_b = as_batch_latency("drafter", drafter) if speculative or drafter is not None else None
    if speculative and not isinstance(acceptance, AcceptanceProcess):
        raise InvalidParameterError(
            f"SI needs an acceptance process (e.g. IIDAcceptance(0.8)), got {acceptance!r}")
    la = _lookahead(lookahead)
    spec = _tree_spec(tree, tree_acceptance, acceptance) if "tree" in algorithms else None
    if spec is None and (tree is not None or tree_acceptance is not None):
        raise InvalidParameterError("tree and tree_acceptance are tree SI's: add 'tree' to algorithms")
    cfg = batching if batching is not None else Batching()
    if not isinstance(cfg, Batching):
        raise InvalidParameterError(f"batching must be a Batching(...), got {cfg!r}")
    if "dsi" in algorithms:
        if cfg.kv_blocks is not None:
            kv_slots(la)  # a lookahead with a maximum, or a named error
        if cfg.drafter == "shared":
            raise UnsupportedScenarioError("DSI drafts beside the target servers: use drafter='separate' with 'dsi'")
        if isinstance(la, BatchSizeLookahead):
            raise UnsupportedScenarioError("DSI's lookahead is an int or a lookahead policy, not a batch-size table")
    ov = overheads if overheads is not None else Overheads()
    slo_ = slo if slo is not None else SLO()
    reps = int_at_least("replications", replications, 1)
    rng = check_rng(rng)
    if isinstance(rng, np.random.Generator):
        raise InvalidParameterError("serve needs a seed or a SeedSequence (replications are spawned from it), "
                                    "not a Generator")
    ss = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    children = [np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (i,), pool_size=ss.pool_size)
                for i in range(reps)]
    per_rep: dict[str, list] = {a: [] for a in algorithms}
    cols: dict[str, list] = {a: [] for a in algorithms}
    bar = progress_bar(reps * len(algorithms), "serve", progress, unit="run")
    try:
        for child in children:
            w_seed, acc_seed, lat_seed, tree_seed = child.spawn(4)  # the first three as before a fourth was added
            table = w.generate(np.random.default_rng(w_seed))
            _check_fits(table, cfg, speculative, len(spec.parents) if spec is not None else 0,
                        kv_slots(la) + 1 if "dsi" in algorithms and cfg.kv_blocks is not None else 0)
            outcomes, signals = None, None
            if speculative:
                acc_rng = np.random.default_rng(acc_seed)
                outcomes, signals = [], []
                for S in table.output_len.tolist():
                    draw = acceptance.draw(acc_rng, S, 1)
                    outcomes.append(draw.accepted[0])
                    signals.append({k: np.asarray(v)[0] for k, v in draw.signals.items()})
            for alg in algorithms:
                if alg == "dsi":
                    eng = run_dsi_engine(table, outcomes, signals, target_b, drafter_b, la, cfg, ov,
                                         np.random.default_rng(lat_seed))
                else:
                    eng = run_engine(table, outcomes, signals, target_b, drafter_b, alg, la, cfg, ov,
                                     np.random.default_rng(lat_seed), spec, np.random.default_rng(tree_seed))
                m, rec = _replication_metrics(eng, table, alg != "nonsi", cfg, slo_)
                per_rep[alg].append(m)
                cols[alg].append(rec)
                bar.update(1)
    finally:
        bar.close()
    metrics = {}
    for alg in algorithms:
        metrics[alg] = {name: Estimate.from_samples([m[name] for m in per_rep[alg]], unit=unit)
                        for name, (unit, _) in SERVING_METRICS.items()}
    speedup = {}

    def col(a, name):
        return [m[name] for m in per_rep[a]]

    for fast, slow in (("si", "nonsi"), ("dsi", "nonsi"), ("dsi", "si"), ("tree", "nonsi"), ("tree", "si")):
        if fast in algorithms and slow in algorithms:
            key = f"{fast}_vs_{slow}"
            speedup[key] = Estimate.ratio(col(slow, "e2e_mean_ms"), col(fast, "e2e_mean_ms"))
            speedup[key + "_tpot"] = Estimate.ratio(col(slow, "tpot_p50_ms"), col(fast, "tpot_p50_ms"))
            speedup[key + "_throughput"] = Estimate.ratio(col(fast, "throughput_tok_s"), col(slow, "throughput_tok_s"))
    scenario = {
        "workload": _describe_workload(w), "trace": isinstance(w, RequestTrace),
        "batching": (f"max batch {cfg.max_batch}, {cfg.replicas} replica(s), drafter {cfg.drafter}"
                     + (f", KV {cfg.kv_blocks} blocks" if cfg.kv_blocks is not None else "")
                     + (", chunked prefill" if cfg.chunked_prefill else "")),
        "lookahead": la.name if hasattr(la, "name") else str(la),
        "tree": spec.label if spec is not None else None,
        "slo": slo is not None,
        "target": repr(target), "drafter": repr(drafter),
        "acceptance": repr(acceptance) if acceptance is not None else None,
    }
    return ServingResult(metrics, speedup, per_rep, cols, scenario)

