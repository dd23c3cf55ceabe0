"""``simspec measure`` and ``simspec record``: the command-line side of :mod:`simspec.real`.

:func:`add_subcommands` adds both to ``simspec``'s subparsers; :data:`COMMANDS` maps their names
to the handlers.  Flags are checked (and output paths: the folder exists and is writable, the
name ends in ``.csv`` / ``.jsonl``) before a model is loaded, so a typo costs no model load.
Nothing here imports torch; the handlers do, through :mod:`simspec.real`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

from ..errors import SimspecError

__all__ = ["add_subcommands", "COMMANDS", "cmd_measure", "cmd_record", "parse_ints"]


def parse_ints(flag: str, text: str) -> list[int]:
    """``"1-4,8,16"`` -> ``[1, 2, 3, 4, 8, 16]`` (ranges inclusive); the error names the flag.

    >>> parse_ints("--widths", "1-4,8")
    [1, 2, 3, 4, 8]
    """
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise SimspecError(f"{flag} must be integers and ranges like 1-16 or 32,128,512, got {text!r}") from None
    if not out or min(out) < 1:
        raise SimspecError(f"{flag} must hold integers >= 1, got {text!r}")
    return sorted(set(out))


def add_subcommands(sub: Any) -> None:
    """Add ``measure`` and ``record`` to the subparsers ``sub`` of the ``simspec`` parser."""
    m = sub.add_parser("measure", help="measure a model's forward latencies into a latency profile CSV",
                       description="Time prefill and KV-cached decode forwards of a causal LM over widths x "
                                   "context lengths (cells interleaved, median and quartiles per cell) and write "
                                   "a latency profile CSV.")
    m.add_argument("model", nargs="?", metavar="MODEL",
                   help="a local model folder, a .gguf file, or a built-in name: smollm2-135m, gemma3-270m")
    m.add_argument("--out", required=True, metavar="FILE", help="the profile to write (.csv)")
    m.add_argument("--widths", default="1-16", metavar="LIST",
                   help="new tokens per decode forward: integers and ranges, e.g. 1-16 or 1,2,4,8 (default 1-16)")
    m.add_argument("--contexts", default="32,128,512", metavar="LIST",
                   help="tokens in the KV cache before a decode forward; also the prefill widths "
                        "(default 32,128,512)")
    m.add_argument("--batch", default="1", metavar="LIST",
                   help="batch sizes: every cell is also timed as one forward over that many sequences, e.g. 1,2,4,8 "
                        "(default 1); the rows carry a batch column (simspec.load_batch_profile reads them all)")
    m.add_argument("--repeats", type=int, default=7, metavar="R", help="timed forwards per cell (default 7)")
    m.add_argument("--warmup", type=int, default=2, metavar="W",
                   help="untimed sweeps over all cells first (default 2)")
    m.add_argument("--device", default="cpu", metavar="DEV", help="cpu, cuda or cuda:N (default cpu)")
    m.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default: torch's own choice)")
    m.add_argument("--seed", type=int, default=0, metavar="X", help="seed of the input tokens and the cell order")
    m.add_argument("--drafter", default=None, metavar="MODEL",
                   help="also measure the loop overheads of transformers' generate for MODEL drafting for this one "
                        "(instrumented runs: plain, prompt lookup 2 and 8, assisted 2, 4 and 8; time outside "
                        "forwards fitted per round, draft token, drafter forward and emitted token) and write them "
                        "as the profile's overhead rows")
    m.add_argument("--overhead-prompts", type=int, default=4, metavar="N",
                   help="with --drafter: built-in prompts the instrumented runs use (default 4)")
    m.add_argument("--tiny", action="store_true",
                   help="a tiny random model instead of MODEL (a smoke run in seconds; its latencies mean little); "
                        "with --drafter tiny, a noisy copy of it drafts")

    r = sub.add_parser("record", help="record a drafter/target pair's per-position acceptance (trace JSON lines)",
                       description="Generate greedily with the target on built-in prompts, teacher-force the "
                                   "drafter along the output, and write per-position outcomes and drafter "
                                   "signals as a per-position acceptance trace.")
    r.add_argument("--target", metavar="MODEL", help="target model: a folder, a .gguf file or a built-in name")
    r.add_argument("--drafter", metavar="MODEL", help="drafter model, the same kinds")
    r.add_argument("--out", required=True, metavar="FILE", help="the trace to write (.jsonl)")
    r.add_argument("--prompts", type=int, default=8, metavar="N",
                   help="prompts from the built-in corpus: the Zen of Python, then stdlib docstrings (default 8)")
    r.add_argument("--max-new-tokens", type=int, default=64, metavar="N",
                   help="tokens the target generates per prompt (default 64)")
    r.add_argument("--top-k", type=int, default=10, metavar="K", help="k of the topk_mass signal (default 10)")
    r.add_argument("--device", default="cpu", metavar="DEV", help="cpu, cuda or cuda:N (default cpu)")
    r.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="record sampled speculative decoding at this temperature instead of greedy: the target "
                        "samples, a draft is accepted with probability sum min(p, q) (with two vocabularies, TLI's "
                        "draft on the token texts both share)")
    r.add_argument("--seed", type=int, default=0, metavar="X",
                   help="with --temperature: seed of the target's sampling and of the outcomes (default 0)")
    r.add_argument("--tiny", action="store_true",
                   help="a tiny random target and a noisy copy of it as the drafter, one byte vocabulary, instead "
                        "of --target/--drafter (a smoke run in seconds; its acceptance means nothing)")


def _check_out(path: str, suffix: str) -> None:
    from .measure import check_output_path

    try:
        check_output_path(path, suffix, "--out")
    except ValueError as exc:
        raise SimspecError(str(exc)) from None


def _positive(flag: str, value: int | None, low: int = 1) -> None:
    if value is not None and value < low:
        raise SimspecError(f"{flag} must be an integer >= {low}, got {value}")


def cmd_measure(args: argparse.Namespace) -> int:
    if args.tiny == (args.model is not None):
        raise SimspecError("give MODEL (a folder, a .gguf file, smollm2-135m or gemma3-270m) or --tiny, not both")
    widths, contexts = parse_ints("--widths", args.widths), parse_ints("--contexts", args.contexts)
    batches = parse_ints("--batch", args.batch)
    _positive("--repeats", args.repeats)
    _positive("--warmup", args.warmup, 0)
    _positive("--threads", args.threads)
    if args.seed < 0:
        raise SimspecError(f"--seed must be an integer >= 0, got {args.seed}")
    _check_out(args.out, ".csv")
    _positive("--overhead-prompts", args.overhead_prompts)
    from . import builtin_prompts, load_model, measure_overheads, measure_profile, noisy_copy, require_models, tiny_model
    from .measure import profile_provenance, write_profile_rows
    from .overheads import overhead_provenance

    require_models()
    t0 = time.perf_counter()
    model = tiny_model() if args.tiny else load_model(args.model, device=args.device)
    drafter = None
    if args.drafter is not None:
        drafter = noisy_copy(model, 0.2, seed=1) if args.tiny and args.drafter == "tiny" else load_model(
            args.drafter, device=args.device)
    rows = measure_profile(model, widths=widths, contexts=contexts, repeats=args.repeats, warmup=args.warmup,
                           device=args.device, threads=args.threads, rng=args.seed,
                           out=args.out if drafter is None else None, batches=batches)
    prefills = len(contexts) * len(batches)
    grid = f"widths {args.widths} x contexts {args.contexts}" + (f" x batches {args.batch}" if batches != [1] else "")
    print(f"measured {model.name}: {len(rows)} cells ({prefills} prefill, {len(rows) - prefills} decode: "
          f"{grid}), {args.repeats} timed forwards each, on {args.device} in {time.perf_counter() - t0:.2f} s")
    if drafter is not None:
        fit = measure_overheads(model, drafter, builtin_prompts(args.overhead_prompts), progress=True)
        prov = {**profile_provenance(model, model.device, args.repeats, args.warmup, rows[0]["threads"], batches),
                **overhead_provenance(model, drafter, fit)}
        write_profile_rows(args.out, rows + fit.rows(model.name), prov)
        print(fit)
    print(f"wrote {args.out}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    if args.tiny and (args.target or args.drafter):
        raise SimspecError("--tiny replaces --target and --drafter: drop them or drop --tiny")
    if not args.tiny and not (args.target and args.drafter):
        raise SimspecError("give --target MODEL and --drafter MODEL (folders, .gguf files, smollm2-135m or "
                           "gemma3-270m), or --tiny")
    for flag, value in (("--prompts", args.prompts), ("--max-new-tokens", args.max_new_tokens),
                        ("--top-k", args.top_k)):
        _positive(flag, value)
    _check_out(args.out, ".jsonl")
    from . import builtin_prompts, load_model, noisy_copy, record_trace, require_models, tiny_model

    require_models()
    prompts = builtin_prompts(args.prompts)
    t0 = time.perf_counter()
    if args.tiny:
        target = tiny_model(seed=0, layers=2)
        drafter = noisy_copy(target, 0.2, seed=1)  # agrees with the target some of the time, unlike a 2nd random one
    else:
        target, drafter = load_model(args.target, device=args.device), load_model(args.drafter, device=args.device)
    if args.temperature is not None and not args.temperature > 0:
        raise SimspecError(f"--temperature must be a number > 0, got {args.temperature:g}")
    records = record_trace(target, drafter, prompts, max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                           out=args.out, corpus=f"simspec builtin_prompts({args.prompts})",
                           temperature=args.temperature, seed=args.seed)
    seen = [o for r in records for o in r["outcomes"] if o is not None]
    total = sum(len(r["outcomes"]) for r in records)
    rate = f"{sum(seen) / len(seen):.3f}" if seen else "n/a"
    print(f"recorded {target.name} drafted by {drafter.name}: {len(records)} prompts, {total} positions "
          f"({len(seen)} observed), acceptance {rate}, in {time.perf_counter() - t0:.2f} s")
    print(f"wrote {args.out}")
    return 0


#: Subcommand name -> handler (``simspec.cli.main`` dispatches through it).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"measure": cmd_measure, "record": cmd_record}
