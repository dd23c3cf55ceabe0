"""Time transformers' generation loops spend outside forwards, fitted per round, draft, drafter forward, token.

:func:`measure_overheads` runs ``model.generate(...)`` — plain greedy decoding, assisted
generation (``assistant_model=drafter``) and prompt lookup (``prompt_lookup_num_tokens=``) —
with every forward of both models timed by a wrapper around their ``forward``, so that for
each run ``outside = wall time − time in forwards``: sampling, bookkeeping, cache cropping,
the drafter's own ``generate`` call each round, re-tokenisation between vocabularies.  Each
run is counted (read from transformers 5.24's ``_assisted_decoding``: every round is exactly
one target forward; the first feeds the prompt and the round's candidates, each later one the
last accepted token and the candidates):

* ``rounds``: target forwards of an assisted or prompt-lookup run; 0 for plain decoding (its
  loop has only the per-token overhead);
* ``draft_tokens``: candidates the target verified, in target tokens — the first round's
  forward width minus the prompt, each later round's width minus 1 (a round that found no
  candidate drafts 0);
* ``drafter_forwards``: forwards of the drafter model (0 for prompt lookup and plain decoding);
* ``emitted_tokens``: new tokens in the output.

:func:`fit_overheads` then fits ``outside ≈ per_call + per_round·rounds + per_draft_token·drafts
+ per_drafter_forward·drafter_forwards + per_emitted_token·emitted`` over the runs by
non-negative least squares (``scipy.optimize.nnls``); ``per_call`` (the set-up of one
``generate`` call) is reported but is not a profile row.  A cost is *identified* only when its
count varies independently of the others across the runs: plain runs pin the per-token cost,
prompt-lookup runs (drafts without drafter forwards) separate drafts from drafter forwards,
and assisted runs with different ``num_assistant_tokens`` separate rounds from drafts.  The
default settings contain all three.

>>> runs = [OverheadRun("s", "p", wall_ms=10 + 2 * r + 0.5 * d + 1 * f + 0.25 * e, forward_ms=10, rounds=r,
...                     draft_tokens=d, drafter_forwards=f, emitted_tokens=e)
...         for r, d, f, e in [(0, 0, 0, 8), (4, 8, 0, 9), (3, 12, 12, 10), (5, 5, 5, 8), (2, 10, 10, 9)]]
>>> fit = fit_overheads(runs, per_call=False)
>>> [round(fit.costs[k], 6) for k in ("per_round_ms", "per_draft_token_ms", "per_drafter_forward_ms",
...                                   "per_emitted_token_ms")]
[2.0, 0.5, 1.0, 0.25]
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .._checks import int_at_least
from ..errors import InvalidParameterError
from . import require_models
from .measure import progress_bar, versions
from .client import check_setting, generate_kwargs, setting_name
from .models import LoadedModel, as_loaded

__all__ = ["OverheadRun", "OverheadFit", "fit_overheads", "measure_overheads", "default_settings", "COSTS",
           "rounds_from_forwards", "in_loop_factors", "run_from_dict"]

#: The fitted costs: :class:`~simspec.Overheads` field -> the run's count it multiplies.
COSTS = {"per_round_ms": "rounds", "per_draft_token_ms": "draft_tokens",
         "per_drafter_forward_ms": "drafter_forwards", "per_emitted_token_ms": "emitted_tokens"}
_PHASE = {"per_round_ms": "overhead_per_round", "per_draft_token_ms": "overhead_per_draft_token",
          "per_drafter_forward_ms": "overhead_per_drafter_forward",
          "per_emitted_token_ms": "overhead_per_emitted_token"}


@dataclass(frozen=True)
class OverheadRun:
    """One instrumented ``generate`` call: wall time, time in forwards, and what the loop did."""

    setting: str
    prompt: str
    wall_ms: float
    forward_ms: float
    rounds: int
    draft_tokens: int
    drafter_forwards: int
    emitted_tokens: int
    target_forwards: int = 0
    max_new_tokens: int = 0  # what the run asked for (it emits fewer when the target ends early)
    #: every forward of the run in order: ``(who, width, ms)``, ``who`` "target" or "drafter"
    forwards: tuple[tuple[str, int, float], ...] = field(default=(), repr=False)
    #: the new tokens the run emitted (target token ids)
    output: tuple[int, ...] = field(default=(), repr=False)

    def round_shapes(self, prompt_len: int) -> list[dict[str, Any]]:
        """The run's rounds as its forwards show them: see :func:`rounds_from_forwards`."""
        return rounds_from_forwards(self.forwards, prompt_len)

    @property
    def outside_ms(self) -> float:
        return self.wall_ms - self.forward_ms


@dataclass(frozen=True)
class OverheadFit:
    """The fitted costs (ms per unit), which of them the runs identify, and the runs themselves."""

    costs: dict[str, float]
    per_call_ms: float
    identified: dict[str, bool]
    rms_residual_ms: float
    runs: tuple[OverheadRun, ...] = field(repr=False)

    def rows(self, model: str) -> list[dict[str, Any]]:
        """The four overhead rows of a latency profile (``width``, ``context_len`` empty)."""
        return [{"model": model, "phase": _PHASE[k], "width": None, "context_len": None, "median_ms": v,
                 "n": len(self.runs)} for k, v in self.costs.items()]

    def table(self) -> str:
        """The per-run table the fit used, one line a run."""
        head = f"{'setting':<16} {'prompt':<10} {'wall_ms':>9} {'fwd_ms':>9} {'out_ms':>8} rounds drafts dfwd emit"
        lines = [head] + [
            f"{r.setting:<16} {r.prompt:<10} {r.wall_ms:9.2f} {r.forward_ms:9.2f} {r.outside_ms:8.2f} "
            f"{r.rounds:6d} {r.draft_tokens:6d} {r.drafter_forwards:4d} {r.emitted_tokens:4d}" for r in self.runs]
        return "\n".join(lines)

    def __str__(self) -> str:
        costs = ", ".join(f"{k} {v:.4g}" + ("" if self.identified[k] else " (not identified)")
                          for k, v in self.costs.items())
        return (f"overheads from {len(self.runs)} runs: {costs}; per_call_ms {self.per_call_ms:.4g}; "
                f"rms residual {self.rms_residual_ms:.3g} ms")


def fit_overheads(runs: Iterable[OverheadRun], *, per_call: bool = True) -> OverheadFit:
    """Non-negative least squares of each run's time outside forwards on its counts.

    ``per_call=True`` adds a constant per ``generate`` call.  A cost whose column is a linear
    combination of the others (e.g. drafts and drafter forwards when every run has as many of
    one as of the other) is not identified: it is fitted (NNLS picks one split) but flagged.
    """
    from scipy.optimize import nnls

    runs = tuple(runs)
    if not runs:
        raise InvalidParameterError("fit_overheads needs at least one run")
    names = list(COSTS)
    A = np.array([[getattr(r, COSTS[k]) for k in names] for r in runs], dtype=float)
    if per_call:
        A = np.column_stack([np.ones(len(runs)), A])
    b = np.array([r.outside_ms for r in runs], dtype=float)
    if not np.all(np.isfinite(b)):
        raise InvalidParameterError("every run needs finite wall_ms and forward_ms")
    x, _ = nnls(A, np.maximum(b, 0.0))
    rank = np.linalg.matrix_rank(A)
    off = 1 if per_call else 0
    identified = {}
    for j, k in enumerate(names):
        col = A[:, j + off]
        identified[k] = bool(np.any(col)) and np.linalg.matrix_rank(np.delete(A, j + off, axis=1)) == rank - 1
    resid = A @ x - b
    return OverheadFit({k: float(x[j + off]) for j, k in enumerate(names)}, float(x[0]) if per_call else 0.0,
                       identified, float(np.sqrt(np.mean(resid ** 2))), runs)


def default_settings(drafter: bool) -> list[dict[str, Any]]:
    """Plain decoding, prompt lookup with 2 and 8 tokens, and (with a drafter) assisted with 2, 4 and 8.

    The assisted settings turn the drafter's confidence stop off (``confidence_threshold 0``),
    so that a round drafts ``k`` tokens and the three ``k`` separate rounds from drafts.
    """
    out: list[dict[str, Any]] = [{"mode": "plain"}, {"mode": "prompt_lookup", "k": 2},
                                 {"mode": "prompt_lookup", "k": 8}]
    if drafter:
        out += [{"mode": "assisted", "k": k, "confidence_threshold": 0.0} for k in (2, 4, 8)]
    return out


class _Timed:
    """Wraps ``model.forward`` (an instance attribute shadowing the class's) to time and log every call."""

    def __init__(self, model, log: list, who: str, sync):
        self.model, self.log, self.who, self.sync = model, log, who, sync
        self.had = "forward" in vars(model)
        self.orig = model.forward

    def __enter__(self):
        orig, log, who, sync = self.orig, self.log, self.who, self.sync

        def timed(*args, **kwargs):
            x = kwargs.get("input_ids", args[0] if args else None)
            if x is None:
                x = kwargs.get("inputs_embeds")
            sync()
            t0 = time.perf_counter()
            out = orig(*args, **kwargs)
            sync()
            log.append((who, int(x.shape[1]) if x is not None else 0, (time.perf_counter() - t0) * 1e3))
            return out

        # the wrapper must look like ``forward`` itself: ``generate`` inspects the signature (does the
        # model take ``attention_mask``, ``position_ids``?) and drops or keeps inputs by it
        self.model.forward = functools.wraps(orig)(timed)
        return self

    def __exit__(self, *exc):
        if self.had:
            self.model.forward = self.orig
        else:
            del self.model.forward


def rounds_from_forwards(forwards: Sequence[tuple[str, int, float]], prompt_len: int) -> list[dict[str, Any]]:
    """The rounds of an assisted or prompt-lookup run, read off its forwards in order.

    Every round is one target forward (transformers' ``_assisted_decoding``): the first feeds the
    prompt and the round's candidates, each later one the last emitted token and the candidates.
    The drafter forwards since the previous target forward belong to the round.  Returns
    ``{"drafted", "drafter_forwards", "drafter_widths"}`` per round (accepted counts are not
    visible in the widths).

    >>> rounds_from_forwards([("drafter", 5, 1.0), ("drafter", 1, 1.0), ("target", 7, 9.0), ("target", 1, 9.0)], 5)
    [{'drafted': 2, 'drafter_forwards': 2, 'drafter_widths': [5, 1]}, {'drafted': 0, 'drafter_forwards': 0, 'drafter_widths': []}]
    """
    out: list[dict[str, Any]] = []
    pending: list[int] = []
    for who, width, _ in forwards:
        if who == "drafter":
            pending.append(int(width))
            continue
        drafted = max(0, int(width) - (prompt_len if not out else 1))
        out.append({"drafted": drafted, "drafter_forwards": len(pending), "drafter_widths": pending})
        pending = []
    return out


def in_loop_factors(runs: Iterable[OverheadRun], target: Any, drafter: Any) -> dict[str, float]:
    """How much the forwards timed inside ``generate`` take, against the profiles' price of the same forwards.

    A profile's forwards are timed one at a time on a copy of the cache; inside the loop the
    same forwards can run faster or slower (warm CPU caches, the loop's own memory traffic).
    For each model this is ``Σ measured ms / Σ profile ms`` over every forward the runs logged,
    each priced at its width (a run's first forward of a model is its prefill at context 0;
    later ones decode at the context the run had reached: the prompt plus the forwards' widths so
    far, in that model's tokens).  Use it on runs the prediction does not score (the fit prompts),
    then ``ScaledLatency(profile, factor)``.  Returns ``{"target": f_T, "drafter": f_D}`` (1.0 for
    a model no run used).
    """
    meas = {"target": 0.0, "drafter": 0.0}
    price = {"target": 0.0, "drafter": 0.0}
    models = {"target": target, "drafter": drafter}
    for run in runs:
        seen = {"target": 0, "drafter": 0}
        for who, width, ms in run.forwards:
            if who not in models or models[who] is None:
                continue
            if seen[who] == 0:
                p = float(models[who].forward(int(width), 0, "prefill"))
            else:
                p = float(models[who].forward(int(width), seen[who], "decode"))
            seen[who] += int(width)
            meas[who] += float(ms)
            price[who] += p
    return {who: (meas[who] / price[who] if price[who] > 0 else 1.0) for who in meas}


def run_from_dict(d: Mapping[str, Any]) -> OverheadRun:
    """An :class:`OverheadRun` back from its ``__dict__`` (as a results file stores it, lists for tuples)."""
    d = dict(d)
    d["forwards"] = tuple((str(w), int(n), float(ms)) for w, n, ms in d.get("forwards", ()))
    d["output"] = tuple(int(t) for t in d.get("output", ()))
    return OverheadRun(**d)


def _count(setting: str, mode: str, prompt: str, prompt_len: int, output: Sequence[int], wall_ms: float,
           log: Sequence[tuple[str, int, float]], max_new_tokens: int = 0) -> OverheadRun:
    target = [ms for who, _, ms in log if who == "target"]
    drafter = [ms for who, _, ms in log if who == "drafter"]
    rounds = drafts = 0
    if mode != "plain":
        shapes = rounds_from_forwards(log, prompt_len)
        rounds, drafts = len(shapes), sum(r["drafted"] for r in shapes)
    return OverheadRun(setting, prompt, wall_ms, sum(target) + sum(drafter), rounds, drafts,
                       len(drafter), len(output), len(target), max_new_tokens,
                       tuple((who, int(w), float(ms)) for who, w, ms in log), tuple(int(t) for t in output))


def measure_overheads(target: Any, drafter: Any | None, prompts: Iterable[Any],
                      settings: Sequence[Mapping[str, Any]] | None = None, *,
                      max_new_tokens: int | Sequence[int] = (16, 32), warmup: int = 1,
                      progress: bool = True) -> OverheadFit:
    """Instrumented ``generate`` runs of each setting on each prompt, and the fitted overheads.

    ``settings``: dicts with ``mode`` (``"plain"``, ``"assisted"`` — needs ``drafter`` —,
    ``"prompt_lookup"``) and ``k`` (``num_assistant_tokens`` with a constant schedule, or
    ``prompt_lookup_num_tokens``; ``confidence_threshold``: the drafter's
    ``assistant_confidence_threshold``); default :func:`default_settings`.  Each prompt runs
    at every ``max_new_tokens`` (two lengths, so that the per-token cost is told apart from the
    per-call one).  Prompts: strings (with a
    tokenizer), ``(id, text)`` pairs or token-id lists.  Different tokenizers are passed to
    ``generate`` (``tokenizer=``, ``assistant_tokenizer=``: universal assisted generation).
    ``warmup`` untimed runs per setting come first.  Returns :class:`OverheadFit`; its
    ``rows(model)`` are the profile's overhead rows, its ``runs`` the per-run table.
    """
    require_models()
    import copy

    import torch
    import transformers

    from .record import _encode, _prompts, same_vocabulary

    target = as_loaded(target)
    drafter = as_loaded(drafter) if drafter is not None else None
    settings = list(settings) if settings is not None else default_settings(drafter is not None)
    lengths = [max_new_tokens] if isinstance(max_new_tokens, (int, np.integer)) else list(max_new_tokens)
    lengths = [int_at_least("max_new_tokens", n, 1) for n in lengths]
    if not lengths:
        raise InvalidParameterError("max_new_tokens must be an integer >= 1 or a non-empty list of them")
    warmup = int_at_least("warmup", warmup, 0)
    for s in settings:
        check_setting(s, drafter is not None)
    items = []
    for pid, p in _prompts(prompts):
        if isinstance(p, str):
            if target.tokenizer is None:
                raise InvalidParameterError(f"prompt {pid} is text but the target has no tokenizer")
            p = _encode(target.tokenizer, p, True)
        items.append((pid, p))
    dev = target.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    shared = drafter is None or same_vocabulary(target.tokenizer, drafter.tokenizer)
    saved = copy.deepcopy(drafter.model.generation_config) if drafter is not None else None

    def run(setting: Mapping[str, Any], ids: list[int], n_new: int, log: list) -> tuple[list[int], float]:
        x = torch.tensor([ids], device=dev)
        if drafter is not None:  # every run starts from the drafter's own config: no setting leaks into the next
            drafter.model.generation_config = copy.deepcopy(saved)
        kwargs = generate_kwargs(target, drafter, setting, x, n_new, shared)
        with _Timed(target.model, log, "target", sync):
            if drafter is not None:
                with _Timed(drafter.model, log, "drafter", sync):
                    sync()
                    t0 = time.perf_counter()
                    out = target.model.generate(x, **kwargs)
                    sync()
            else:
                sync()
                t0 = time.perf_counter()
                out = target.model.generate(x, **kwargs)
                sync()
        return out[0, len(ids):].tolist(), (time.perf_counter() - t0) * 1e3

    runs = []
    bar = progress_bar(len(settings) * (warmup + len(items) * len(lengths)), "overheads", progress)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the assistant's generate call warns about its own arguments
    try:
        with torch.inference_mode():
            for setting in settings:
                for _ in range(warmup):
                    run(setting, items[0][1], lengths[0], [])
                    bar.update()
            for pid, ids in items:  # prompts and lengths outer, settings inner: drift spreads over the settings
                for n_new in lengths:
                    for setting in settings:
                        log: list = []
                        output, wall = run(setting, ids, n_new, log)
                        runs.append(_count(setting_name(setting), setting["mode"], pid, len(ids), output, wall, log,
                                           n_new))
                        bar.update()
    finally:
        bar.close()
        transformers.logging.set_verbosity(verbosity)
        if drafter is not None:
            drafter.model.generation_config = saved
    return fit_overheads(runs)


def overhead_provenance(target: LoadedModel, drafter: LoadedModel | None, fit: OverheadFit) -> dict[str, Any]:
    """What the ``#`` lines of a profile with overhead rows say about them."""
    return {
        "overheads": (f"fitted by NNLS on {len(fit.runs)} instrumented generate runs of {target.name}"
                      + (f" with drafter {drafter.name}" if drafter else "")
                      + f"; per_call_ms {fit.per_call_ms:.4g}; rms residual {fit.rms_residual_ms:.3g} ms; "
                      + "not identified: " + (", ".join(k for k, v in fit.identified.items() if not v) or "none")),
        "overhead_versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
    }
