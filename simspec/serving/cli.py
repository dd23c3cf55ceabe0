"""``simspec serve``: non-SI and SI under load, side by side, from the shell.

:func:`add_subcommand` adds it to ``simspec``'s subparsers; :data:`COMMANDS` maps its name to
the handler.  Every flag is checked (and the ``--records`` path) before the run starts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import SimspecError

__all__ = ["add_subcommand", "COMMANDS", "cmd_serve", "parse_lookahead", "parse_lengths"]


def parse_lookahead(text: str):
    """``"4"`` -> 4; ``"1:5,8:3,32:1"`` -> a batch-size table (k 5 from batch 1, 3 from 8, 1 from 32).

    >>> parse_lookahead("1:5,8:3")
    {1: 5, 8: 3}
    """
    try:
        if ":" not in text:
            return int(text)
        return {int(b): int(k) for b, k in (part.split(":") for part in text.split(","))}
    except ValueError:
        raise SimspecError(f"--lookahead must be an integer K or a table BATCH:K,BATCH:K (e.g. 1:5,8:3,32:1), "
                           f"got {text!r}") from None


def parse_lengths(flag: str, text: str):
    """``"128"`` -> 128; ``"50-300"`` -> uniform lengths from 50 to 300."""
    from .workload import UniformLengths

    lo, sep, hi = text.partition("-")
    try:
        if not sep:
            return int(lo)
        return UniformLengths(int(lo), int(hi))
    except ValueError:
        raise SimspecError(f"{flag} must be a token count N or a range LO-HI (e.g. 50-300), got {text!r}") from None


def add_subcommand(sub: Any) -> None:
    s = sub.add_parser(
        "serve", help="speculative decoding under load: non-SI vs SI with request arrivals and continuous batching",
        description="Serve the same requests with plain decoding (non-SI) and SI on a continuous-batching engine "
                    "(discrete-event, virtual time): TTFT, TPOT and end-to-end percentiles, throughput, goodput and "
                    "GPU-seconds per token, with 95%% intervals over replications, and the speedups.")
    m = s.add_argument_group("models")
    for who in ("target", "drafter"):
        x = m.add_mutually_exclusive_group(required=who == "target")
        x.add_argument(f"--{who}-ms", type=float, metavar="MS",
                       help=f"{who}'s time per decode forward at batch 1, in ms (a step costs one forward of all "
                            "its new tokens)")
        x.add_argument(f"--{who}-profile", metavar="FILE[:MODEL]", help=f"the {who}'s measured latency profile")
        x.add_argument(f"--{who}-params", type=float, metavar="N",
                       help=f"with --hardware: a Llama-shaped {who} of about N parameters (e.g. 8e9), priced by the "
                            "roofline")
        x.add_argument(f"--{who}-model", metavar="NAME",
                       help=f"with --hardware: the {who} by preset name (simspec.roofline.MODELS, e.g. llama-3-8b)")
    m.add_argument("--hardware", default=None, metavar="NAME",
                   help="price forwards by the roofline on this GPU preset (A100-80GB, H100, H200, L40S, CPU)")
    m.add_argument("--efficiency", type=float, default=0.8, metavar="E",
                   help="with --hardware: fraction of the memory bandwidth reached (default 0.8)")
    m.add_argument("--compute-efficiency", type=float, default=0.6, metavar="E",
                   help="with --hardware: fraction of the peak FLOP/s reached (default 0.6)")
    m.add_argument("--forward-overhead-ms", type=float, default=1.5, metavar="MS",
                   help="with --hardware: framework time per forward, kernel launches and scheduling (default 1.5)")
    m.add_argument("--target-ttft-ms", type=float, default=0.0, metavar="MS", help="target's prefill time (default 0)")
    m.add_argument("--drafter-ttft-ms", type=float, default=0.0, metavar="MS", help="drafter's prefill time (default 0)")
    m.add_argument("--verify-ms-per-token", type=float, default=0.0, metavar="MS",
                   help="target time per extra token in a forward: a step of n new tokens costs T + MS*(n-1); "
                        "0 makes batching free (default 0)")
    m.add_argument("--drafter-ms-per-token", type=float, default=0.0, metavar="MS",
                   help="the same for the drafter (default 0)")
    m.add_argument("--acceptance", type=float, default=None, metavar="A",
                   help="probability that one draft token is accepted (needed for SI)")
    m.add_argument("--lookahead", default="4", metavar="K|B:K,...",
                   help="SI's drafts per round: an integer, or per batch size, e.g. 1:5,8:3,32:1 (default 4)")
    w = s.add_argument_group("workload")
    w.add_argument("--rate", default=None, metavar="R[,R...]",
                   help="requests per second (Poisson); several increasing rates draw the load curve: the speedup "
                        "at each rate and where it crosses 1")
    w.add_argument("--burst-cv", type=float, default=None, metavar="CV",
                   help="bursty arrivals: gamma gaps with this coefficient of variation (1 = Poisson)")
    w.add_argument("--requests", type=int, default=200, metavar="N", help="requests per replication (default 200)")
    w.add_argument("--prompt-len", default="128", metavar="N|LO-HI", help="prompt tokens (default 128)")
    w.add_argument("--output-len", default="128", metavar="N|LO-HI", help="output tokens (default 128)")
    w.add_argument("--request-trace", default=None, metavar="FILE",
                   help="replay requests from a JSON-lines file (arrival_s or arrival_ms, prompt_len, output_len) "
                        "instead of --rate")
    b = s.add_argument_group("engine")
    b.add_argument("--max-batch", default="32", metavar="B[,B...]",
                   help="sequences per step (default 32); with --best-k, the batch sizes to compare")
    b.add_argument("--best-k", action="store_true",
                   help="SI's throughput for each lookahead (--lookahead LO-HI, e.g. 1-6) at each batch size "
                        "(--max-batch 1,16,64), every request arriving at once: the best k per batch")
    b.add_argument("--max-tokens-per-step", type=int, default=8192, metavar="N", help="new tokens per step (8192)")
    b.add_argument("--chunked-prefill", action="store_true", help="split prompts into chunks that share steps")
    b.add_argument("--kv-blocks", type=int, default=None, metavar="N", help="KV cache size in blocks (unlimited)")
    b.add_argument("--block-size", type=int, default=16, metavar="N", help="tokens per KV block (default 16)")
    b.add_argument("--drafter-placement", choices=("separate", "shared"), default="separate",
                   help="drafter on its own GPU, or time-shared with the target (default separate)")
    b.add_argument("--servers", type=int, default=None, metavar="N",
                   help="target GPUs: non-SI and SI run one engine copy on each, and DSI joins the comparison, "
                        "sharing the N as one pool of batching servers (default: one GPU, no DSI)")
    from ..cli import _add_tree_flags

    _add_tree_flags(s, "token trees: --tree or --tree-budget adds tree SI to the comparison", "no tree SI")
    o = s.add_argument_group("output")
    o.add_argument("--slo-ttft-ms", type=float, default=None, metavar="MS", help="goodput: TTFT target")
    o.add_argument("--slo-tpot-ms", type=float, default=None, metavar="MS", help="goodput: TPOT target")
    o.add_argument("--replications", type=int, default=3, metavar="N",
                   help="independent workloads; intervals count them (default 3)")
    o.add_argument("--seed", type=int, default=0, metavar="X", help="random seed (default 0)")
    o.add_argument("--records", default=None, metavar="FILE.csv", help="write one row per request (CSV)")
    o.add_argument("--progress", action="store_true", help="show a progress bar")
    o.add_argument("--plot", default=None, metavar="FILE",
                   help="with several --rate values or --best-k: draw the curve (PNG, PDF or SVG)")
    o.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _model(args, who: str):
    from ..latency import AffineLatency
    from ..profiles import load_profile, profile_spec

    spec = getattr(args, f"{who}_profile")
    if spec is not None:
        return load_profile(*profile_spec(spec))
    params, preset = getattr(args, f"{who}_params"), getattr(args, f"{who}_model")
    if params is not None or preset is not None:
        from ..roofline import ModelSpec, RooflineLatency

        if args.hardware is None:
            raise SimspecError(f"--{who}-params and --{who}-model price forwards on a GPU: add --hardware NAME")
        if params is not None and not (math.isfinite(params) and params >= 1e6):
            raise SimspecError(f"--{who}-params must be a parameter count >= 1e6, got {params:g}")
        spec_ = ModelSpec.from_params(params) if params is not None else ModelSpec.preset(preset)
        return RooflineLatency(spec_, args.hardware, efficiency=args.efficiency,
                               compute_efficiency=args.compute_efficiency, overhead_ms=args.forward_overhead_ms)
    ms = getattr(args, f"{who}_ms")
    ttft = getattr(args, f"{who}_ttft_ms")
    slope = args.verify_ms_per_token if who == "target" else args.drafter_ms_per_token
    for flag, v, low in ((f"--{who}-ms", ms, 0.0), (f"--{who}-ttft-ms", ttft, -1.0), ("slope", slope, -1.0)):
        if not math.isfinite(v) or v <= low:
            raise SimspecError(f"{flag} must be a finite time in ms {'> 0' if low == 0 else '>= 0'}, got {v:g}")
    return AffineLatency(tpot_ms=ms, per_extra_token_ms=slope, ttft_ms=ttft)


def cmd_serve(args) -> int:
    from ..acceptance import IIDAcceptance
    from ..io import write_csv
    from .batching import Batching
    from .serve import SLO, serve
    from .workload import BurstyArrivals, PoissonArrivals, Workload, load_request_trace

    if args.records:
        p = Path(args.records)
        if p.suffix.lower() != ".csv":
            raise SimspecError(f"--records {p}: give a .csv file name")
        if not p.resolve().parent.is_dir():
            raise SimspecError(f"--records {p}: the folder {p.resolve().parent} does not exist")
    speculative = any(getattr(args, f"drafter_{x}") is not None for x in ("ms", "profile", "params", "model"))
    if args.hardware is not None and args.target_params is None and args.target_model is None:
        raise SimspecError("--hardware prices forwards by the roofline: give --target-params N or --target-model NAME")
    if speculative and args.acceptance is None:
        raise SimspecError("SI needs --acceptance A (or drop the drafter to serve plain decoding only)")
    from ..real.cli import parse_ints

    if args.plot:
        from ..cli import _check_figure_format, _check_output_file

        _check_output_file("--plot", Path(args.plot))
        _check_figure_format("--plot", Path(args.plot))
    batches = parse_ints("--max-batch", args.max_batch)
    tree_kw = _tree_kw(args, speculative)
    if args.best_k:
        if tree_kw:
            raise SimspecError("--best-k searches SI's k: drop --tree/--tree-budget")
        return _best_k(args, batches, speculative)
    if len(batches) > 1:
        raise SimspecError("several --max-batch values compare batch sizes with --best-k: add it, or give one")
    rates = _rates(args.rate)
    if len(rates) > 1:
        return _load_curve(args, rates, batches[0], speculative, tree_kw)
    if args.plot:
        raise SimspecError("--plot draws a load curve or the best k per batch: give several --rate values or --best-k")
    if args.request_trace:
        if args.rate is not None or args.burst_cv is not None:
            raise SimspecError("--request-trace replays recorded arrivals: drop --rate and --burst-cv")
        workload = load_request_trace(args.request_trace)
    else:
        if args.rate is None:
            raise SimspecError("give --rate R (requests per second) or --request-trace FILE")
        arrivals = BurstyArrivals(rates[0], args.burst_cv) if args.burst_cv is not None else PoissonArrivals(rates[0])
        workload = Workload(arrivals, parse_lengths("--prompt-len", args.prompt_len),
                            parse_lengths("--output-len", args.output_len), args.requests)
    slo = None
    if args.slo_ttft_ms is not None or args.slo_tpot_ms is not None:
        slo = SLO(args.slo_ttft_ms if args.slo_ttft_ms is not None else math.inf,
                  args.slo_tpot_ms if args.slo_tpot_ms is not None else math.inf)
    if args.servers is not None and args.servers < 1:
        raise SimspecError(f"--servers must be an integer >= 1, got {args.servers}")
    if args.servers is not None and not speculative:
        raise SimspecError("--servers adds DSI, which needs a drafter: give --drafter-ms (or a drafter profile/model)")
    batching = Batching(batches[0], args.max_tokens_per_step, args.chunked_prefill, args.kv_blocks,
                        args.block_size, args.drafter_placement, replicas=args.servers or 1)
    algorithms = (("nonsi",) + (("si",) if speculative else ()) + (("dsi",) if args.servers is not None else ())
                  + (("tree",) if tree_kw else ()))
    result = serve(workload, _model(args, "target"), _model(args, "drafter") if speculative else None,
                   IIDAcceptance(args.acceptance) if speculative else None,
                   lookahead=parse_lookahead(args.lookahead), algorithms=algorithms,
                   batching=batching, slo=slo, replications=args.replications, rng=args.seed, progress=args.progress,
                   **tree_kw)
    if args.records:
        from .serve import _RECORD_FIELDS

        cols = ("algorithm", "replication", "request") + _RECORD_FIELDS
        write_csv(args.records, cols, ([row[c] for c in cols] for row in result.records()))
    if args.json:
        print(json.dumps(_finite(result.to_dict()), allow_nan=False))
    else:
        print(result)
        if args.records:
            print(f"wrote {args.records}")
    return 0


def _rates(text):
    if text is None:
        return []
    try:
        rates = [float(x) for x in text.split(",")]
    except ValueError:
        raise SimspecError(f"--rate must be requests per second, or increasing rates R,R,..., got {text!r}") from None
    if any(not (math.isfinite(r) and r > 0) for r in rates) or any(b <= a for a, b in zip(rates, rates[1:])):
        raise SimspecError(f"--rate must be positive, and several rates increasing, got {text!r}")
    return rates


def _common(args, speculative):
    from ..acceptance import IIDAcceptance

    if not speculative or args.acceptance is None:
        raise SimspecError("the load curve and --best-k compare SI with non-SI: give a drafter and --acceptance A")
    if args.request_trace or args.burst_cv is not None:
        raise SimspecError("the load curve and --best-k draw Poisson or closed workloads: drop --request-trace and "
                           "--burst-cv")
    return _model(args, "target"), _model(args, "drafter"), IIDAcceptance(args.acceptance)


def _emit(args, result) -> int:
    if args.plot:
        from ..plots import save_figure

        save_figure(result.figure(), args.plot)
    if args.json:
        print(json.dumps(_finite({"rows": result.to_records()}), allow_nan=False))
        return 0
    print(result)
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _tree_kw(args, speculative: bool) -> dict:
    """``tree`` and ``tree_acceptance`` of ``serve`` from ``--tree``/``--tree-budget``/``--sibling-acceptance``."""
    from ..cli import _tree_flags

    wanted = args.tree is not None or args.tree_budget is not None
    if wanted and not speculative:
        raise SimspecError("tree SI needs a drafter: give --drafter-ms (or a drafter profile/model) and --acceptance")
    return _tree_flags(args, args.acceptance if wanted else 0.0, wanted, "--tree or --tree-budget")


def _load_curve(args, rates, max_batch, speculative, tree_kw=None) -> int:
    from .batching import Batching
    from .curves import load_curve

    tree_kw = tree_kw or {}
    target, drafter, acc = _common(args, speculative)
    curve = load_curve(rates, target, drafter, acc, prompt_len=parse_lengths("--prompt-len", args.prompt_len),
                       output_len=parse_lengths("--output-len", args.output_len), requests=args.requests,
                       lookahead=parse_lookahead(args.lookahead),
                       algorithms=("nonsi", "si") + (("dsi",) if args.servers is not None else ())
                       + (("tree",) if tree_kw else ()), **tree_kw,
                       batching=Batching(max_batch, args.max_tokens_per_step, args.chunked_prefill, args.kv_blocks,
                                         args.block_size, args.drafter_placement, replicas=args.servers or 1),
                       replications=args.replications, rng=args.seed, progress=args.progress)
    return _emit(args, curve)


def _best_k(args, batches, speculative) -> int:
    from ..real.cli import parse_ints
    from .batching import Batching
    from .curves import best_k_by_batch

    target, drafter, acc = _common(args, speculative)
    if args.rate is not None or args.servers is not None:
        raise SimspecError("--best-k runs closed batches (every request at once) of SI and non-SI: drop --rate "
                           "and --servers")
    ks = parse_ints("--lookahead", args.lookahead)
    table = best_k_by_batch(batches, ks, target, drafter, acc, prompt_len=parse_lengths("--prompt-len",
                            args.prompt_len), output_len=parse_lengths("--output-len", args.output_len),
                            batching=Batching(max_tokens_per_step=args.max_tokens_per_step,
                                              chunked_prefill=args.chunked_prefill, kv_blocks=args.kv_blocks,
                                              block_size=args.block_size, drafter=args.drafter_placement),
                            replications=args.replications, rng=args.seed)
    return _emit(args, table)


def _finite(obj):
    """JSON has no NaN or infinity: an interval of one replication, an unbounded goodput become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


COMMANDS = {"serve": cmd_serve}
