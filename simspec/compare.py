"""Compare non-SI, SI and DSI on one scenario, by closed form or Monte Carlo.

The closed forms (``method="theory"``) need i.i.d. acceptance and constant (or
affine) latencies and describe ``S → ∞``; the Monte Carlo
(``method="montecarlo"``) runs any acceptance process on finite ``S``, drawing
the outcomes ``A`` once per replication and feeding the same ``A`` to all three
algorithms, so every speedup is paired.  Both assume what the DSI paper assumes:
servers enough that no verification waits (on the scenario's
:class:`~simspec.Deployment`, DSI runs only lookaheads that fit), and no
communication overhead.  ``lookahead="best"`` is resolved by the one planner,
:func:`simspec.planner.best_lookahead`.

Replications run in chunks whose outcomes take a bounded amount of memory
(:data:`CHUNK_BYTES`), so a million replications need no more memory than a
thousand.

>>> from simspec import Scenario, compare
>>> s = Scenario.from_ms(target_ms=30.0, drafter_ms=3.0, acceptance=0.8, lookahead="best")
>>> cmp = compare(s, method="theory")
>>> cmp.si.lookahead, round(cmp.speedup["si_vs_nonsi"].mean, 3)
(6, 2.47)

``extra`` adds columns beside the three: tree SI, PEARL and (Monte Carlo only) a pipeline,
on the same outcomes, each with its speedups over non-SI and SI:

>>> cmp = compare(s, method="theory", extra=("tree", "pearl"))
>>> cmp.extras["tree"].lookahead, cmp.extras["pearl"].lookahead
('64 nodes, depth 7', 10)
>>> round(cmp.speedup["tree_vs_si"].mean, 3), round(cmp.speedup["pearl_vs_si"].mean, 3)
(1.587, 1.054)
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from . import theory
from ._checks import check_des_work, check_montecarlo_work, check_rng, int_at_least
from .errors import InvalidParameterError, UnsupportedScenarioError
from .latency import prefill_ms
from .lookahead import LookaheadPolicy, StaticLookahead
from .montecarlo.chunks import rep_chunks
from .montecarlo.dsi import dsi_epoch_table, dsi_run
from .montecarlo.nonsi import nonsi_run
from .montecarlo.si import si_run
from .montecarlo.tree import tree_run
from .planner import best_lookahead, closed_form_applies, verify_ms
from .deployment import dsi_servers_needed
from .records import AlgorithmResult, Comparison, Estimate
from .scenario import Scenario

__all__ = ["compare", "Method", "CHUNK_BYTES", "EXTRAS"]

Method = Literal["theory", "montecarlo"]

#: Algorithms ``compare(extra=...)`` adds as columns beside non-SI, SI and DSI.
EXTRAS = ("tree", "pearl", "pipeline")

#: Bytes of acceptance outcomes (and per-position work arrays) one chunk of replications may take.
CHUNK_BYTES = 32 * 2**20

_ENDLESS = 10**6  # with a = 1 there is one endless epoch: its per-token cost at this length is the S -> inf limit
_METRICS = ("decode_ms", "target_forwards", "target_forwards_wasted", "drafter_forwards", "target_busy_ms",
            "drafter_busy_ms")


def dsi_by_events(s: Scenario, policy: LookaheadPolicy, A: np.ndarray, signals) -> dict[str, np.ndarray]:
    """DSI with a stop rule on each row of ``A``: one discrete-event run per row, as the Monte Carlo's arrays.

    The busy times leave the prefills out, as :func:`~simspec.montecarlo.dsi.dsi_run`'s do
    (the records add them).  Also returns ``peak_servers_busy``.
    """
    return runs_by_events(s, "dsi", A, policy, signals)


def runs_by_events(s: Scenario, algorithm: str, A: np.ndarray, lookahead, signals=None) -> dict[str, np.ndarray]:
    """``algorithm`` on each row of ``A``: one discrete-event run per row, as the Monte Carlo's arrays.

    Exact for the latencies compare takes (deterministic, context-free: no random time), so the
    runs are paired with the Monte Carlo's on the same outcomes.  Busy times leave the prefills
    out, as the Monte Carlo engines' do; also returns ``peak_servers_busy``.
    """
    from .des.runner import run_once

    t_pre = prefill_ms(s.target, s.prompt_len)
    d_pre = prefill_ms(s.drafter, s.prompt_len)
    out = {m: np.empty(A.shape[0]) for m in (*_METRICS, "peak_servers_busy")}
    for i in range(A.shape[0]):
        rec = run_once(s, algorithm, A[i], lookahead=lookahead,
                       signals={k: v[i] for k, v in (signals or {}).items()})
        for m, v in (("decode_ms", rec.decode_ms), ("target_forwards", rec.target_forwards),
                     ("target_forwards_wasted", rec.target_forwards_wasted), ("drafter_forwards", rec.drafter_forwards),
                     ("target_busy_ms", rec.target_busy_ms - t_pre), ("drafter_busy_ms", rec.drafter_busy_ms - d_pre),
                     ("peak_servers_busy", rec.peak_servers_busy)):
            out[m][i] = v
    return out


def _rng(rng) -> np.random.Generator:
    rng = check_rng(rng)
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _fixed_dsi_k(s: Scenario, k: int) -> tuple[int, int]:
    """``k`` and the servers it uses, if it fits the deployment without queueing."""
    need = int(dsi_servers_needed(s, k)[()])
    if s.servers is not None and need > s.servers:
        raise UnsupportedScenarioError(
            f"DSI with lookahead {k} needs {need} target servers (speculative tasks"
            f"{' plus the non-SI chain' if s.deployment.chain else ''}) so that no task waits, but "
            f"servers={s.servers}; raise the servers, raise the lookahead, or use lookahead='best'. "
            "Queueing is modelled only by the discrete-event engine (simulate)"
        )
    return k, need


_UNIT_NAMES = ("ms", "ms", "", "", "", "GPU-s", "GPU-s")


def _results(method, runs, s: Scenario, units=None, replications=None) -> list[AlgorithmResult]:
    """Records from per-replication arrays; ``runs``: ``(algorithm, per_rep, ttft, lookahead, servers, notes)``.

    Theory passes one exact 'replication'; the Monte Carlo's estimates of every
    algorithm and metric come from one numpy pass.
    """
    S = s.tokens
    n_units = None if method != "montecarlo" else (replications if units is None else int(np.unique(units).size))
    n = np.size(runs[0][1]["decode_ms"])
    rows = np.empty((7 * len(runs), n))
    for i, (algorithm, per_rep, ttft, *_) in enumerate(runs):
        prefill_busy = prefill_ms(s.target, s.prompt_len) + (
            prefill_ms(s.drafter, s.prompt_len) if algorithm != "nonsi" else 0.0)
        block = rows[7 * i: 7 * i + 7]
        block[0] = per_rep["decode_ms"]
        block[1] = block[0] + ttft
        block[0] /= S
        block[2] = per_rep["target_forwards"]
        block[3] = per_rep["target_forwards_wasted"]
        block[4] = per_rep["drafter_forwards"]
        np.add(per_rep["target_busy_ms"], per_rep["drafter_busy_ms"], out=block[5])
        block[5] += prefill_busy
        block[5] /= 1000.0
        np.divide(block[5], S, out=block[6])
    names = _UNIT_NAMES * len(runs)
    if method == "montecarlo":
        est = Estimate.from_rows(rows, units, names)
    else:
        est = [Estimate.exact(np.mean(r), u) for r, u in zip(rows, names)]
    out = []
    for i, (algorithm, per_rep, ttft, lookahead, servers, notes) in enumerate(runs):
        lat_tok, lat, fwd, wasted, drafts, gpu, gpu_tok = est[7 * i: 7 * i + 7]
        out.append(AlgorithmResult(
            algorithm=algorithm, method=method, latency_per_token_ms=lat_tok, latency_ms=lat, ttft_ms=float(ttft),
            tokens=S, lookahead=lookahead, target_servers=int(servers), target_forwards=fwd,
            target_forwards_wasted=wasted, drafter_forwards=drafts, gpu_seconds=gpu, gpu_seconds_per_token=gpu_tok,
            notes=notes, replications=replications, independent_units=n_units,
            per_run_latency_ms=rows[7 * i + 1].copy() if method == "montecarlo" else np.empty(0),
        ))
    return out


def _speedups(nonsi, si, dsi, paired: bool, units=None) -> dict[str, Estimate]:
    base = np.minimum(si, nonsi)
    pairs = {"si_vs_nonsi": (nonsi, si), "dsi_vs_si": (si, dsi), "dsi_vs_nonsi": (nonsi, dsi), "dsi_vs_baseline": (base, dsi)}
    if paired:
        nums = np.vstack([n for n, _ in pairs.values()])
        dens = np.vstack([d for _, d in pairs.values()])
        return dict(zip(pairs, Estimate.ratio_rows(nums, dens, units)))
    return {k: Estimate.exact(float(np.mean(n) / np.mean(d)), "x") for k, (n, d) in pairs.items()}


def _extra_names(extra) -> tuple[str, ...]:
    """``extra`` as a tuple of known algorithm names, in order, without repeats ("tree,pearl" works too)."""
    if extra is None:
        return ()
    items = extra.split(",") if isinstance(extra, str) else extra
    try:
        items = list(items)
    except TypeError:
        raise InvalidParameterError(f"extra must name algorithms among {', '.join(EXTRAS)}, got {extra!r}") from None
    names: list[str] = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else item
        if name not in EXTRAS:
            raise InvalidParameterError(
                f"extra must name algorithms among {', '.join(EXTRAS)}, got {item!r} (non-SI, SI and DSI are "
                "always compared)")
        if name not in names:
            names.append(name)
    return tuple(names)


def _extra_setup(s: Scenario, names: tuple[str, ...], method: str, tree, tree_acceptance) -> dict[str, tuple]:
    """Each extra algorithm's setting and note: the tree (a ``TreeSpec``), or PEARL's window, the pipeline's cap."""
    from .des.runner import _overlap_lookahead
    from .des.tree import tree_spec

    out: dict[str, tuple] = {}
    for name in names:
        if name == "tree":
            spec, note = tree_spec(s, tree, tree_acceptance)
            if tree_acceptance is not None:
                m = int(spec.law.max_rank)
                p = np.asarray(spec.law.prob(1, np.arange(1, min(m, 4) + 1)), dtype=float)
                note = (f"tree law as given (p_r at depth 1: {', '.join(f'{x:.3g}' for x in p)}"
                        f"{', ...' if m > 4 else ''})" + ("; " + note if note else ""))
            if tree is not None:
                note += ("; " if note else "") + "tree as given"
            rate = s.acceptance.mean
            p1 = float(np.asarray(spec.law.prob(1, 1)))
            if abs(p1 - rate) > 1e-9:
                note += (f"; the law's rank-1 rate {p1:.3g} differs from the acceptance {rate:.3g}: "
                         + ("the closed form follows the law" if method == "theory" else
                            "rank-1 children follow the scenario's outcomes"))
            out[name] = (spec, note)
            continue
        if method == "theory" and name == "pipeline":
            raise UnsupportedScenarioError(
                "the pipeline has no closed form (its drafter and target phases interleave): use "
                "method='montecarlo' (a discrete-event run per replication) or simulate(scenario, 'pipeline')")
        k = _overlap_lookahead(s, name)
        if name == "pearl":
            if k < 2:
                raise InvalidParameterError("PEARL's window must hold at least 2 drafts (lookahead >= 2)")
            note = (f"window {k}" + (": the drafts that fit in one target forward, max(2, round(T/d))"
                                     if s.lookahead == "best" else ""))
        else:
            note = f"each verification takes every draft made so far, at most {k}"
        out[name] = (k, note)
    return out


def _tree_theory(s: Scenario, spec) -> dict[str, list[float]]:
    """Tree SI's closed form, ``S →∞``: ``(draft + verify)/E[accepted length]`` per token (best_tree's pricing)."""
    from .trees import expected_accepted_length

    tree, S = spec.tree, s.tokens
    e = expected_accepted_length(tree, spec.law)
    draft = float(sum(float(np.asarray(s.drafter.forward(w, s.prompt_len + level)))
                      for level, w in enumerate(tree.draft_widths)))
    verify = float(np.asarray(s.target.forward(tree.width, s.prompt_len)))
    rounds = S / e
    return {"decode_ms": [S * (draft + verify) / e], "target_forwards": [rounds], "target_forwards_wasted": [0.0],
            "drafter_forwards": [rounds * tree.size], "target_busy_ms": [rounds * verify],
            "drafter_busy_ms": [rounds * draft]}


def _pearl_theory(s: Scenario, a: float, g: int) -> dict[str, list[float]]:
    """PEARL's closed form (:func:`simspec.theory.pearl_latency_per_token`'s chain), ``S → ∞``."""
    t1 = float(np.asarray(s.target.forward(1, s.prompt_len)))
    d = float(np.asarray(s.drafter.forward(1, s.prompt_len)))
    v = np.asarray(s.target.forward(np.array([g, g + 1]), s.prompt_len), dtype=float) * np.ones(2) / t1
    r = theory._pearl_rates(a, d / t1, g, float(v[0]), float(v[1]))
    S = s.tokens
    return {"decode_ms": [S * t1 * r["latency"]], "target_forwards": [S * r["rounds"]],
            "target_forwards_wasted": [0.0], "drafter_forwards": [S * r["drafts"]],
            "target_busy_ms": [S * t1 * r["target_busy"]], "drafter_busy_ms": [S * t1 * r["drafter_busy"]]}


def _extra_speedups(nonsi, si, lats: dict, paired: bool, units=None) -> dict[str, Estimate]:
    """``<name>_vs_nonsi`` and ``<name>_vs_si`` of each extra algorithm (paired ratios in the Monte Carlo)."""
    pairs = {f"{name}_vs_{base}": (ref, lat) for name, lat in lats.items()
             for base, ref in (("nonsi", nonsi), ("si", si))}
    if paired:
        nums = np.vstack([n for n, _ in pairs.values()])
        dens = np.vstack([d for _, d in pairs.values()])
        return dict(zip(pairs, Estimate.ratio_rows(nums, dens, units)))
    return {k: Estimate.exact(float(np.mean(n) / np.mean(d)), "x") for k, (n, d) in pairs.items()}


def compare(
    scenario: Scenario,
    method: Method = "theory",
    *,
    replications: int | None = None,
    rng: int | np.random.Generator | None = None,
    chain: bool | None = None,
    reps: int | None = None,
    extra=(),
    tree=None,
    tree_acceptance=None,
) -> Comparison:
    """Latency and cost of non-SI, SI and DSI on ``scenario``, and of the ``extra`` algorithms.

    ``method="theory"`` uses the closed forms (i.i.d. acceptance only);
    ``"montecarlo"`` simulates ``replications`` (default 200) paired
    replications with generator ``rng`` (an int seed or a
    ``numpy.random.Generator``).  ``chain`` overrides the deployment's
    (``chain=False``: DSI without the non-SI chain).  ``reps`` is the old name
    of ``replications``.

    ``extra``: more columns, any of :data:`EXTRAS` — ``"tree"`` (tree SI: closed form
    ``(draft + verify)/E[accepted length]``, or :func:`~simspec.montecarlo.tree.tree_run`),
    ``"pearl"`` (:func:`simspec.theory.pearl_latency_per_token`, or a discrete-event run per
    replication) and ``"pipeline"`` (Monte Carlo only: a discrete-event run per replication).
    The Monte Carlo runs them on the same outcomes as the other three, so their speedups
    (``<name>_vs_nonsi``, ``<name>_vs_si``) are paired; they appear in ``Comparison.extras``.
    ``tree`` and ``tree_acceptance`` (a :class:`~simspec.TokenTree` and a tree law) set the
    tree as for ``simulate``; by default the law is
    ``PositionalTreeAcceptance.from_chain_rate(acceptance)`` and the tree
    :func:`simspec.best_tree`'s.  PEARL's window and the pipeline's cap are the scenario's
    static lookahead, or for ``"best"`` the drafts that fit in one target forward and
    ``k_max``.
    """
    if reps is not None:
        if replications is not None:
            raise InvalidParameterError("give replications= only (reps= is its old name)")
        warnings.warn("compare(reps=) is now compare(replications=)", DeprecationWarning, stacklevel=2)
        replications = reps
    replications = 200 if replications is None else replications
    s = scenario if chain is None else scenario.replace(chain=chain)
    why_not = closed_form_applies(s)
    if why_not is not None:
        raise UnsupportedScenarioError(
            f"{why_not}; the closed forms and the Monte Carlo assume deterministic, context-free latencies and "
            "no overheads — use the discrete-event engine (simspec.simulate)"
        )
    chain = s.deployment.chain
    t1, d = s.target.tpot_ms, s.drafter.tpot_ms
    ttft_nonsi = prefill_ms(s.target, s.prompt_len)
    ttft_spec = max(ttft_nonsi, prefill_ms(s.drafter, s.prompt_len))
    la = s.lookahead
    if method not in ("theory", "montecarlo"):
        raise InvalidParameterError(f"method must be 'theory' or 'montecarlo', got {method!r}")
    names = _extra_names(extra)
    if (tree is not None or tree_acceptance is not None) and "tree" not in names:
        raise InvalidParameterError("tree and tree_acceptance set the tree of extra='tree': add it to extra")
    if method == "theory":
        a = s.acceptance.iid_rate
        if a is None:
            raise UnsupportedScenarioError(
                f"the closed forms need i.i.d. acceptance, but the scenario has {s.acceptance!r}; "
                "use method='montecarlo'"
            )
    extras = _extra_setup(s, names, method, tree, tree_acceptance) if names else {}
    extra_runs: dict[str, dict] = {}
    if method == "theory":
        if isinstance(la, LookaheadPolicy) and la.static_k is None:
            raise UnsupportedScenarioError(
                f"the closed forms cover static lookaheads only, not {la.name}; use method='montecarlo'"
            )
        if la == "best":
            k_si = best_lookahead(s, "si", method="theory").k
            plan = best_lookahead(s, "dsi", method="theory")
            k_dsi, servers = plan.k, plan.servers
        else:
            k_si = la.static_k
            k_dsi, servers = _fixed_dsi_k(s, la.static_k)
        S = s.tokens
        nonsi = nonsi_run(s.target, S, 1, s.prompt_len)
        tok_per_round = float(theory.si_expected_tokens_per_iteration(a, k_si))
        v_si = float(verify_ms(s, k_si))
        rounds = S / tok_per_round
        si = {
            "decode_ms": [S * (k_si * d + v_si) / tok_per_round],
            "target_forwards": [rounds],
            "target_forwards_wasted": [0.0],
            "drafter_forwards": [rounds * k_si],
            "target_busy_ms": [rounds * v_si],
            "drafter_busy_ms": [rounds * k_si * d],
        }
        v_dsi = float(verify_ms(s, k_dsi))
        costs = {
            name: S * theory.iid_epoch_ratio(lambda r, n=name: dsi_epoch_table(r, k_dsi, d, v_dsi, t1, chain)[n], a, _ENDLESS if a == 1 else None)
            for name in ("target_forwards", "target_forwards_wasted", "drafter_forwards", "target_busy_ms", "drafter_busy_ms")
        }
        slope = (v_dsi / t1 - 1.0) / k_dsi
        costs["decode_ms"] = S * t1 * float(theory.dsi_latency_per_token(a, s.c, k_dsi, slope, chain))
        dsi = {k: [v] for k, v in costs.items()}
        for name, (setting, _) in extras.items():
            extra_runs[name] = _tree_theory(s, setting) if name == "tree" else _pearl_theory(s, a, setting)
        paired = False
        si_note = "closed form, S -> infinity"
        dsi_note = ""
        units = None
        n_reps = None
    else:
        n_reps = int_at_least("replications", replications, 2, "confidence intervals need at least two replications")
        check_montecarlo_work(n_reps, s.tokens, ("replications", "scenario.tokens"))
        gen = _rng(rng)
        dsi_note = ""
        nonsi, si, dsi = ({m: [] for m in _METRICS} for _ in range(3))
        unit_parts: list[np.ndarray] = []
        replayed = False
        k_si = k_dsi = pol = servers = None
        dsi_peak = 0
        if extras:
            if set(extras) & {"pearl", "pipeline"}:
                check_des_work(s.tokens, n_reps, ("scenario.tokens", "replications"))
            extra_runs = {name: {m: [] for m in _METRICS} for name in extras}
            # the tree's sibling draws: a stream of their own, so that the outcomes do not depend on the extras
            tree_gen = gen.spawn(1)[0] if "tree" in extras else None
        for start, stop in rep_chunks(n_reps, s.tokens, CHUNK_BYTES):
            draw = s.acceptance.draw(gen, s.tokens, stop - start)
            A = draw.accepted
            if pol is None:  # the lookahead is chosen once, on the first chunk (at most PILOT replications)
                if la == "best":
                    k_si = best_lookahead(s, "si", accepted=A).k
                    plan = best_lookahead(s, "dsi", accepted=A)
                    k_dsi, servers = plan.k, plan.servers
                    pol = StaticLookahead(k_si)
                elif la.static_k is None:
                    # a dynamic policy drives SI, and sets DSI's blocks: the discrete-event engine runs DSI, one
                    # run per replication on the same outcomes (exact for these latencies: no random time)
                    pol, k_si, k_dsi, servers = la, la.name, la, s.servers
                    dsi_note = f"{la.name} in the discrete-event engine, one run per replication; "
                else:
                    pol, k_si = la, la.static_k
                    k_dsi, servers = _fixed_dsi_k(s, la.static_k)
            parts = (nonsi_run(s.target, s.tokens, stop - start, s.prompt_len),
                     si_run(A, pol, s.target, s.drafter, s.prompt_len, draw.signals),
                     dsi_run(A, k_dsi, s.target, s.drafter, s.prompt_len, chain) if isinstance(k_dsi, int)
                     else dsi_by_events(s, k_dsi, A, draw.signals))
            for acc, part in zip((nonsi, si, dsi), parts):
                for m in _METRICS:
                    acc[m].append(np.asarray(part[m], dtype=float))
            if "peak_servers_busy" in parts[2]:
                dsi_peak = max(dsi_peak, int(np.max(parts[2]["peak_servers_busy"])))
            for name, (setting, _) in extras.items():
                part = (tree_run(A, setting.tree, setting.law, s.target, s.drafter, s.prompt_len, rng=tree_gen)
                        if name == "tree" else runs_by_events(s, name, A, setting))
                for m in _METRICS:
                    extra_runs[name][m].append(np.asarray(part[m], dtype=float))
            unit_parts.append(np.arange(start, stop) if draw.units is None else np.asarray(draw.units))
            replayed = replayed or draw.units is not None
        nonsi, si, dsi, *ex = ({m: v[0] if len(v) == 1 else np.concatenate(v) for m, v in acc.items()}
                               for acc in (nonsi, si, dsi, *extra_runs.values()))
        extra_runs = dict(zip(extra_runs, ex))
        units = np.concatenate(unit_parts) if replayed else None
        if units is not None and np.unique(units).size == units.size:  # every replication is its own unit
            units = None
        paired = True
        si_note = ""

    if isinstance(k_dsi, LookaheadPolicy):
        if servers is None:
            servers = dsi_peak  # a stop rule's blocks vary: the servers its tasks used at most
        k_dsi = k_dsi.name
    dsi_note += "non-SI chain" if chain else "no non-SI chain"
    runs = [("nonsi", nonsi, ttft_nonsi, None, 1, ""), ("si", si, ttft_spec, k_si, 1, si_note),
            ("dsi", dsi, ttft_spec, k_dsi, servers, dsi_note)]
    for name, (setting, note) in extras.items():
        how = ("closed form, S -> infinity" if method == "theory" else
               "discrete-event engine, one run per replication on the same outcomes" if name != "tree" else "")
        label = f"{setting.tree.size} nodes, depth {setting.tree.depth}" if name == "tree" else setting
        runs.append((name, extra_runs[name], ttft_spec, label, 1, "; ".join(x for x in (how, note) if x)))
    res_nonsi, res_si, res_dsi, *res_extra = _results(method, runs, s, units, n_reps)
    lat = [np.asarray(x["decode_ms"], dtype=float) + t for x, t in ((nonsi, ttft_nonsi), (si, ttft_spec), (dsi, ttft_spec))]
    speed = _speedups(*lat, paired=paired, units=units)
    if extras:
        speed.update(_extra_speedups(lat[0], lat[1], {name: np.asarray(extra_runs[name]["decode_ms"], dtype=float)
                                                      + ttft_spec for name in extras}, paired, units))
    desc = s.describe() | {"method": method, "replications": n_reps,
                           "independent_units": res_si.independent_units}
    return Comparison(desc, res_nonsi, res_si, res_dsi, speed, extras=dict(zip(extras, res_extra)))
