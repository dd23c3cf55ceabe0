"""Command-line front end (thin: parse, build a Scenario, call the engines, print).

``simspec compare`` — non-SI vs SI vs DSI on one scenario;
``simspec simulate`` — one algorithm on simulated servers (the discrete-event engine);
``simspec plan`` — SI and DSI over 1..N target servers: the knee and the Pareto front;
``simspec vocab`` — a token-level verifier: acceptance, losslessness, cost;
``simspec heatmap`` — the DSI paper's four-panel heatmap (CSV + PNG);
``simspec demo`` — the paper's real-model table through simspec, plus the heatmap.
Bad input exits with status 2 and one line that says what to change, before any work starts:
numbers out of range, work too large to finish (``ResourceLimitError``), and output paths.
Output files (``--trace``, ``--gantt``) go into a folder that must already exist; an output
folder (``--out``) is created if missing, but its parent must exist — a typo in a path is an
error, not a new tree of folders.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

from .errors import SimspecError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_scenario_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    for who, metavar in (("target", "T"), ("drafter", "D")):
        x = g.add_mutually_exclusive_group(required=True)
        x.add_argument(f"--{who}-ms", type=float, metavar=metavar,
                       help=f"{who} model's time per output token (one decode forward), in ms")
        x.add_argument(f"--{who}-profile", default=None, metavar="FILE[:MODEL]",
                       help=f"instead of --{who}-ms: the {who}'s measured latency profile (CSV; MODEL picks one of "
                            "the file's models; builtin:dsi-paper-a100:MODEL is the DSI paper's A100 table)")
    g.add_argument("--acceptance", type=float, default=None, metavar="A",
                   help="probability that one draft token is accepted given a correct prefix, in [0, 1] "
                        "(required unless --acceptance-trace is given)")
    g.add_argument("--burstiness", type=float, default=None, metavar="B",
                   help="make acceptance bursty: a two-state (easy/hard) Markov process with mean A and state "
                        "autocorrelation B in [0, 1) (compare: needs --method montecarlo)")
    g.add_argument("--easy-acceptance", type=float, default=None, metavar="P",
                   help="with --burstiness: acceptance in the easy state (default max(0.95, (1+A)/2))")
    g.add_argument("--hard-acceptance", type=float, default=None, metavar="P",
                   help="with --burstiness: acceptance in the hard state (default min(0.2, A/2))")
    g.add_argument("--acceptance-trace", dest="acceptance_trace", default=None, metavar="FILE",
                   help="replay recorded acceptance outcomes instead: a JSON-lines trace from `simspec record` "
                        "(per position) or a per-round trace, or text (one trace a line: 0/1 string or "
                        "'runs: n1 n2 ...'); replaces --acceptance (compare: needs --method montecarlo)")
    g.add_argument("--wrap", action="store_true",
                   help="with --acceptance-trace: repeat a trace that is shorter than --tokens instead of refusing it")
    g.add_argument("--lookahead", default="best", metavar="K|best",
                   help="drafts per verification (an integer >= 1), or 'best' to pick, per algorithm, the "
                        "lookahead with the lowest latency (default: best)")
    g.add_argument("--k-max", type=int, default=200, metavar="K",
                   help="largest lookahead 'best' may pick (default 200)")
    g.add_argument("--policy", choices=("static", "heuristic", "confidence", "adaptive", "disco", "specdec", "oracle"),
                   default="static",
                   help="how the lookahead is chosen each round: static (--lookahead K or best; default), "
                        "heuristic (transformers' schedule: +2 after a fully accepted round, else -1; starts at "
                        "--lookahead K, default 5), confidence (transformers' stop: draft until a token whose "
                        "drafter probability is below --confidence-threshold, at most --lookahead K, default 20; "
                        "needs a trace with the top1_prob signal), adaptive (the confidence stop with transformers' "
                        "ROC update of the threshold after each round), disco and specdec (DISCO, SpecDec++: a classifier of "
                        "the drafter's signal, trained with its threshold on a separate draw of the scenario's "
                        "acceptance, seed --seed + 1), oracle (draft until the first rejection: the "
                        "upper bound no real drafter reaches). Dynamic policies need the Monte Carlo or simulate")
    g.add_argument("--confidence-threshold", type=float, default=0.4, metavar="T",
                   help="with --policy confidence: the drafter's stop probability (transformers' default 0.4)")
    g.add_argument("--servers", type=int, default=None, metavar="N",
                   help="target instances DSI may use in all, the non-SI chain's included when it runs (default: as "
                        "many as it needs so that no verification waits)")
    g.add_argument("--tokens", type=int, default=1000, metavar="S", help="tokens to generate (default 1000)")
    g.add_argument("--target-ttft-ms", type=float, default=0.0, metavar="MS",
                   help="target's prefill time (time to first token), added to end-to-end latency (default 0)")
    g.add_argument("--drafter-ttft-ms", type=float, default=0.0, metavar="MS",
                   help="drafter's prefill time; SI/DSI start decoding after both prefills (default 0)")
    g.add_argument("--verify-ms-per-token", type=float, default=0.0, metavar="MS",
                   help="extra target time per extra token in a verification forward: verifying k drafts "
                        "costs T + MS*k (default 0, the papers' model)")
    g.add_argument("--no-chain", action="store_true",
                   help="run the DSI variant without the non-SI chain (no longer guaranteed >= non-SI)")


def _add_tree_flags(p: argparse.ArgumentParser, title: str, default: str = "the best tree") -> None:
    """``--tree``, ``--tree-budget``, ``--sibling-acceptance``: the tree of simulate's, compare's and serve's tree SI."""
    t = p.add_argument_group(title)
    t.add_argument("--tree", default=None, metavar="B1,B2,...",
                   help=f"a k-ary tree: children per node at each depth (e.g. 2,2,1); default: {default}")
    t.add_argument("--tree-budget", type=int, default=None, metavar="N",
                   help="Sequoia's optimal tree of at most N nodes for the tree law instead")
    t.add_argument("--sibling-acceptance", type=float, default=None, metavar="B",
                   help="the tree law: a later sibling's acceptance once the earlier ones are rejected "
                        "(default: --acceptance)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simspec", description="How fast are non-SI, SI and DSI speculative decoding, at what cost?")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("compare", help="non-SI vs SI vs DSI latency, speedups and cost for one scenario",
                       description="Latency per token, end-to-end latency, speedups and GPU cost of non-SI "
                                   "(autoregressive), SI (speculative inference) and DSI (distributed SI).")
    _add_scenario_flags(p)
    p.add_argument("--method", choices=("theory", "montecarlo"), default="theory",
                   help="theory: closed forms (exact, i.i.d. acceptance, S -> infinity); montecarlo: paired "
                        "simulation of finite S with 95%% confidence intervals (default theory)")
    p.add_argument("--replications", "--reps", dest="replications", type=int, default=200, metavar="R",
                   help="Monte Carlo replications (default 200; --reps is the old name)")
    p.add_argument("--seed", type=int, default=0, metavar="X", help="random seed (default 0)")
    p.add_argument("--with", dest="extra", default=None, metavar="ALG[,ALG...]",
                   help="more columns beside non-SI, SI and DSI, comma-separated: tree (tree SI: --tree, "
                        "--tree-budget; default the best tree for the latency models), pearl (PEARL; --lookahead: its "
                        "window, best: the drafts that fit in one target forward), pipeline (an asynchronous "
                        "drafter/verifier pipeline, --lookahead: the most one verification takes; needs --method "
                        "montecarlo). With --method montecarlo, pearl and pipeline run the discrete-event engine once "
                        "per replication on the same outcomes (seconds, not milliseconds)")
    _add_tree_flags(p, "token trees (--with tree)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    m = sub.add_parser("simulate", help="one algorithm on simulated servers (discrete-event, virtual time)",
                       description="Simulate non-SI, SI or DSI with a pool of target servers, queueing, "
                                   "cancellation, overheads and stochastic latencies (simpy, virtual time).")
    m.add_argument("--algorithm", choices=("nonsi", "si", "dsi", "pearl", "pipeline", "tree"), required=True,
                   help="nonsi: autoregressive; si: speculative inference; dsi: distributed speculative inference; "
                        "pearl: PEARL's pre-verify/post-verify with the drafter beside the target (--lookahead: its "
                        "window; best: the drafts that fit in one target forward); pipeline: an asynchronous "
                        "drafter/verifier pipeline, each verification taking every draft made so far "
                        "(--lookahead: the most it takes); tree: a token tree drafted level by level and verified in "
                        "one forward (--tree, --tree-budget; default: the best tree for the latency models)")
    _add_scenario_flags(m)
    _add_tree_flags(m, "token trees (--algorithm tree)")
    g = m.add_argument_group("servers and overheads")
    g.add_argument("--queue", choices=("fifo", "lifo"), default="fifo",
                   help="order in which waiting verification tasks get a server (default fifo; the DSI "
                        "authors' simulator used lifo)")
    g.add_argument("--message-ms", type=float, default=0.0, metavar="X",
                   help="one message between the drafter and a target server, each way (default 0)")
    g.add_argument("--sync-ms", type=float, default=0.0, metavar="X",
                   help="KV-cache synchronisation after a correction, before drafting resumes (default 0)")
    g.add_argument("--startup-ms", type=float, default=0.0, metavar="X",
                   help="start-up of a verification task on a server (default 0)")
    g.add_argument("--latency-cv", type=float, default=0.0, metavar="CV",
                   help="random jitter of every forward: log-normal with this coefficient of variation "
                        "(default 0: constant latencies)")
    m.add_argument("--replications", type=int, default=20, metavar="R",
                   help="independent runs, each with its own seed (default 20)")
    m.add_argument("--seed", type=int, default=0, metavar="X",
                   help="random seed; the same seed gives every algorithm the same acceptance outcomes (default 0)")
    m.add_argument("--workers", type=int, default=1, metavar="W",
                   help="processes to run replications in (default 1); results do not depend on it")
    m.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    m.add_argument("--trace", default=None, metavar="FILE",
                   help="write the first replication's event log as JSON lines")
    m.add_argument("--gantt", default=None, metavar="FILE",
                   help="draw the first replication as a Gantt chart of drafter and servers (PNG)")
    m.add_argument("--gantt-window", default=None, metavar="START:END",
                   help="with --gantt: the stretch of virtual time to draw, in ms (either end may be left out); "
                        "default: the whole run, or its first 40 verifications when it is longer")
    m.add_argument("--progress", action="store_true", help="draw a progress bar on stderr")

    pl = sub.add_parser("plan", help="how many target servers: SI and DSI over servers 1..N, the knee, the Pareto front",
                        description="Latency and GPU-seconds per token of SI and DSI (each at its best lookahead) "
                                    "for 1..N target servers (the non-SI chain's included), the knee and the "
                                    "Pareto front of latency against GPU cost.")
    _add_scenario_flags(pl)
    pl.add_argument("--max-servers", type=int, default=16, metavar="N",
                    help="largest number of target servers to plan for (default 16)")
    pl.add_argument("--objective", choices=("latency", "cost"), default="latency",
                    help="what DSI's lookahead minimises at each server count: latency per token, or GPU-seconds "
                         "per token (default latency)")
    pl.add_argument("--method", choices=("auto", "theory", "montecarlo"), default="auto",
                    help="theory: closed forms (i.i.d. acceptance); montecarlo: any acceptance process, on a pilot "
                         "draw (default auto)")
    pl.add_argument("--seed", type=int, default=0, metavar="X", help="random seed of the pilot draw (default 0)")
    pl.add_argument("--plot", default=None, metavar="FILE",
                    help="draw latency vs servers and latency vs GPU-seconds (PNG, PDF or SVG)")
    pl.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    h = sub.add_parser("heatmap", help="the DSI paper's four-panel speedup heatmap (CSV + PNG)",
                       description="Speedups over a grid of drafter/target latency ratio c and acceptance a.")
    h.add_argument("--protocol", choices=("paper", "repo"), default="paper",
                   help="paper: 100x101 grid, SI best k<=200, DSI k=1 (closed forms); repo: the authors' "
                        "repository grid, k<=20, 7 servers, S=1000, 5 repeats (Monte Carlo) (default paper)")
    h.add_argument("--out", default="simspec-heatmap", metavar="DIR", help="output folder (default ./simspec-heatmap)")
    h.add_argument("--seed", type=int, default=0, metavar="X", help="random seed for --protocol repo (default 0)")
    h.add_argument("--no-png", action="store_true", help="write the CSV (and its JSON metadata) only")
    h.add_argument("--mark", default=None, metavar="C,A",
                   help="mark your own drafter/target latency ratio C and acceptance A on every panel")

    v = sub.add_parser("vocab", help="token-level verification: acceptance, losslessness and cost of a verifier",
                       description="Run a verifier on a synthetic drafter/target pair (one character process, two "
                                   "vocabularies): acceptance (empirical and closed form), distance of the output "
                                   "from the target's law, and cost.")
    from .sampling.verifiers import verifiers  # the registry: a registered verifier is a choice here

    v.add_argument("--algorithm", choices=tuple(verifiers()), required=True,
                   help="; ".join(f"{name}: {ver.description}" for name, ver in verifiers().items()).replace("%", "%%"))
    v.add_argument("--overlap", type=float, default=1.0, metavar="F",
                   help="fraction of the target's multi-character tokens the drafter also has (default 1)")
    v.add_argument("--prune", type=float, default=0.0, metavar="F",
                   help="fraction of the drafter's vocabulary pruned away, least frequent first (default 0)")
    v.add_argument("--temperature", type=float, default=1.0, metavar="T",
                   help="sampling temperature of both models (0 = greedy argmax; default 1)")
    v.add_argument("--closeness", type=float, default=0.9, metavar="C",
                   help="how closely the drafter models the text, 0..1 (dials acceptance; default 0.9)")
    v.add_argument("--contexts", type=int, default=40, metavar="N", help="contexts evaluated (default 40)")
    v.add_argument("--samples", type=int, default=2000, metavar="N",
                   help="verification steps sampled per context (default 2000)")
    v.add_argument("--seed", type=int, default=0, metavar="X", help="random seed (default 0)")
    v.add_argument("--json", action="store_true", help="print one JSON object")

    d = sub.add_parser("demo", help="the DSI paper's real-model table through simspec, plus the heatmap",
                       description="Published DSI-vs-SI speedups of ten model pairs beside simspec's, and the "
                                   "paper-protocol heatmap.")
    d.add_argument("--out", default=None, metavar="DIR",
                   help="output folder for the heatmap files (default: simspec-demo in the system's temporary "
                        "folder, so that a demo run leaves nothing in the current folder)")
    d.add_argument("--seed", type=int, default=0, metavar="X", help="random seed (default 0)")
    d.add_argument("--replications", "--reps", dest="replications", type=int, default=400, metavar="R",
                   help="Monte Carlo replications per model pair (default 400)")
    d.add_argument("--json", action="store_true", help="print the table (and the files written) as JSON")
    la = sub.add_parser("lookahead", help="every lookahead policy on one scenario, ranked: the gain of a dynamic "
                                          "lookahead over the best static one",
                        description="SI with each lookahead policy (best static k, transformers' heuristic, "
                                    "confidence stop at its defaults and tuned, adaptive threshold, DISCO, "
                                    "SpecDec++, oracle) on common outcomes and drafter signals, fastest first.")
    _add_scenario_flags(la)
    la.add_argument("--num-assistant-tokens", type=int, default=20, metavar="K",
                    help="the dynamic policies' most drafts a round (transformers' num_assistant_tokens, default 20)")
    la.add_argument("--replications", "--reps", dest="replications", type=int, default=200, metavar="R",
                    help="evaluation replications (a training draw of as many comes first; default 200)")
    la.add_argument("--seed", type=int, default=0, metavar="X", help="random seed (default 0)")
    la.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    sw = sub.add_parser("sweep", help="a grid of scenarios from a TOML file, on any executor, streamed to disk, "
                                      "resumable",
                        description="Run compare or simulate on every row of a sweep file's grid; rows stream into "
                                    "OUT/rows.jsonl as they finish, and --resume finishes an interrupted sweep.")
    sw.add_argument("file", metavar="SWEEP.toml", help="the sweep: [grid.product], [grid.zip], [grid.fixed], [run]")
    sw.add_argument("--out", required=True, metavar="DIR", help="output folder (created); rows go to DIR/rows.jsonl")
    sw.add_argument("--executor", default="local", metavar="E",
                    help="local (this process, default), processes:N (a pool of N processes) or dask://HOST:PORT "
                         "(a Dask scheduler; needs the cluster extra)")
    sw.add_argument("--resume", action="store_true", help="keep the rows already in DIR/rows.jsonl, run the rest")
    sw.add_argument("--progress", action="store_true", help="a progress bar on stderr")

    r = sub.add_parser("replay", help="price recorded rounds forward by forward: a real client's predicted speedup",
                       description="The predicted wall time and speedup of transformers' assisted generation, "
                                   "prompt by prompt: every forward of the recorded (or rebuilt) rounds priced "
                                   "from latency profiles, plus the profiles' loop overheads.")
    r.add_argument("trace", metavar="TRACE",
                   help="a per-round trace (its rounds are replayed as recorded), or a per-position trace from "
                        "`simspec record` (rounds rebuilt with transformers' rule for one shared vocabulary: "
                        "--num-assistant-tokens, --schedule, --confidence-threshold); builtin:cpu-real-pair is "
                        "the shipped SmolLM2 -> Gemma-3 trace")
    for who in ("target", "drafter"):
        x = r.add_mutually_exclusive_group(required=True)
        x.add_argument(f"--{who}-profile", default=None, metavar="FILE[:MODEL]",
                       help=f"the {who}'s latency profile (CSV; its overhead rows are charged too)")
        x.add_argument(f"--{who}-ms", type=float, default=None, metavar="MS",
                       help=f"instead: the {who}'s time per forward, whatever its width (prefill included)")
    r.add_argument("--num-assistant-tokens", type=int, default=20, metavar="K",
                   help="per-position trace: the drafter's lookahead (transformers' default 20)")
    r.add_argument("--schedule", choices=("constant", "heuristic", "heuristic_transient"), default="constant",
                   help="per-position trace: how the lookahead changes (default constant)")
    r.add_argument("--confidence-threshold", type=float, default=0.4, metavar="T",
                   help="per-position trace: the drafter stops after a token below this probability "
                        "(transformers' default 0.4; 0 turns it off)")
    r.add_argument("--tokens", type=int, default=None, metavar="N",
                   help="per-position trace: new tokens per prompt (default: each prompt's whole trace)")
    r.add_argument("--unobserved-as-rejected", action="store_true",
                   help="per-position trace: count an unobserved position (null) as a rejected draft instead of "
                        "refusing the trace")
    r.add_argument("--prompt-len", type=int, default=None, metavar="P",
                   help="the prompt length of prompts whose trace rows do not give one")
    r.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    from .real.cli import add_subcommands as _add_real  # measure, record (simspec.real: no torch import here)

    _add_real(sub)
    from .serving.cli import add_subcommand as _add_serve

    _add_serve(sub)
    return parser


def _lookahead(value: str):
    if value == "best":
        return "best"
    try:
        return int(value)
    except ValueError:
        raise SimspecError(f"--lookahead must be an integer >= 1 or 'best', got {value!r}") from None


def _policy(args):
    """``--policy`` and ``--lookahead``: the scenario's lookahead (an int, 'best' or a policy object)."""
    from .lookahead import AdaptiveConfidenceLookahead, ConfidenceLookahead, HeuristicLookahead, OracleLookahead

    k = _lookahead(args.lookahead)
    policy = getattr(args, "policy", "static")
    if policy == "static":
        return k
    if policy == "heuristic":
        return HeuristicLookahead(5 if k == "best" else k, max(args.k_max, 5 if k == "best" else k))
    if policy == "confidence":
        if not 0 <= args.confidence_threshold <= 1:
            raise SimspecError(f"--confidence-threshold must be a probability in [0, 1], got "
                               f"{args.confidence_threshold:g}")
        return ConfidenceLookahead(args.confidence_threshold, 20 if k == "best" else k)
    if policy == "adaptive":
        if not 0 < args.confidence_threshold <= 1:
            raise SimspecError(f"--confidence-threshold must be in (0, 1] for the adaptive threshold (it adapts a "
                               f"set threshold), got {args.confidence_threshold:g}")
        return AdaptiveConfidenceLookahead(args.confidence_threshold, 20 if k == "best" else k)
    return OracleLookahead(args.k_max)


def _load_profiles(args) -> None:
    """``--target-profile``/``--drafter-profile``: load them (errors name the file), and set the -ms flags' TPOTs."""
    from .profiles import load_profile, profile_spec

    for who in ("target", "drafter"):
        spec = getattr(args, f"{who}_profile", None)
        setattr(args, f"_{who}_model", None)
        if spec is None:
            continue
        for flag in (f"--{who}-ttft-ms",) + (("--verify-ms-per-token",) if who == "target" else ()):
            if getattr(args, flag[2:].replace("-", "_")):
                raise SimspecError(f"--{who}-profile gives the {who}'s forward times (its prefill and verification "
                                   f"costs included): drop {flag}")
        model = load_profile(*profile_spec(spec))
        setattr(args, f"_{who}_model", model)
        setattr(args, f"{who}_ms", model.tpot_ms)


def _check_flags(args) -> None:
    """Name the flag, not the internal parameter, when a number is out of range."""
    _load_profiles(args)
    for flag, value in (("--target-ms", args.target_ms), ("--drafter-ms", args.drafter_ms)):
        if not (value > 0 and math.isfinite(value)):
            raise SimspecError(f"{flag} must be a latency in ms > 0, got {value:g}")
    for flag, value in (("--target-ttft-ms", args.target_ttft_ms), ("--drafter-ttft-ms", args.drafter_ttft_ms),
                        ("--verify-ms-per-token", args.verify_ms_per_token)):
        if not (value >= 0 and math.isfinite(value)):
            raise SimspecError(f"{flag} must be a time in ms >= 0, got {value:g}")
    if (args.easy_acceptance is not None or args.hard_acceptance is not None) and args.burstiness is None:
        raise SimspecError("--easy-acceptance and --hard-acceptance shape bursty acceptance: add --burstiness B")
    if args.acceptance_trace and args.acceptance is not None:
        raise SimspecError("give either --acceptance or --acceptance-trace, not both")
    if args.acceptance_trace:
        pass
    elif args.acceptance is None:
        raise SimspecError("--acceptance is required (or --acceptance-trace FILE to replay recorded outcomes)")
    elif not 0.0 <= args.acceptance <= 1.0:
        raise SimspecError(f"--acceptance must be a probability in [0, 1], got {args.acceptance:g}")
    for flag in ("message_ms", "sync_ms", "startup_ms", "latency_cv"):
        value = getattr(args, flag, 0.0)
        if not (value >= 0 and math.isfinite(value)):
            raise SimspecError(f"--{flag.replace('_', '-')} must be >= 0, got {value:g}")
    for flag, value, low in (("--tokens", args.tokens, 1), ("--k-max", args.k_max, 1),
                             ("--servers", args.servers, 1), ("--replications", getattr(args, "replications", 2),
                                                                          2 if args.command == "compare" else 1),
                             ("--workers", getattr(args, "workers", 1), 1)):
        if value is not None and value < low:
            raise SimspecError(f"{flag} must be an integer >= {low}, got {value}")
    if args.lookahead != "best":
        k = _lookahead(args.lookahead)
        if k < 1:
            raise SimspecError(f"--lookahead must be an integer >= 1 or 'best', got {k}")
    _check_magnitudes(args)


_MAX_TOTAL_MS = 1e150  # ~1e142 years: any real total is far below, and its square is still a finite float


def _check_magnitudes(args) -> None:
    """Reject numbers whose products overflow and work that would not finish, naming the flag."""
    from . import _checks

    cv = getattr(args, "latency_cv", 0.0)
    if cv > _checks.MAX_LATENCY_CV:
        raise SimspecError(
            f"--latency-cv must be <= {_checks.MAX_LATENCY_CV:g}, got {cv:g}: a log-normal with this cv has its "
            f"median at {1 / math.sqrt(1 + cv * cv):.2g} of the mean, so almost every forward takes nearly no time "
            "and a run reports latencies far below the mean; measured GPU forwards vary with cv well below 1"
        )
    _checks.check_lookahead_size("--k-max", args.k_max)
    k = _lookahead(args.lookahead)
    if k != "best":
        _checks.check_lookahead_size("--lookahead", k)
    c = args.drafter_ms / args.target_ms
    v = 1.0 + args.verify_ms_per_token / args.target_ms  # a width-2 verification, in target forwards
    K = max(args.k_max, k if k != "best" else 1)
    too_large = SimspecError(
        f"--target-ms {args.target_ms:g}, --drafter-ms {args.drafter_ms:g}, --verify-ms-per-token "
        f"{args.verify_ms_per_token:g} and --tokens {args.tokens} give totals past {_MAX_TOTAL_MS:.0e} ms, whose "
        "squares (in confidence intervals) a float cannot hold; latencies are in ms per forward "
        "(e.g. --target-ms 30 --drafter-ms 3)"
    )
    # every verification of every token, and every drafted token: the largest sums SI forms
    total = (args.target_ttft_ms + args.drafter_ttft_ms
             + args.tokens * ((args.target_ms + args.verify_ms_per_token * K) * 2 + args.drafter_ms * K))
    if not total <= _MAX_TOTAL_MS:
        raise too_large
    if not v / c <= _checks.MAX_SERVERS:
        raise SimspecError(
            f"--drafter-ms / --target-ms = c = {c:.3g} is so small that DSI would need more than "
            f"{_checks.MAX_SERVERS:.3g} target servers; give a --drafter-ms of at least "
            f"{v * args.target_ms / _checks.MAX_SERVERS:.3g} ms (or a smaller --target-ms)"
        )
    # DSI: as many servers busy at once as it needs, about 1/c
    if not total * (1 + 1 / c) <= _MAX_TOTAL_MS:
        raise too_large
    if args.command == "compare" and args.method == "montecarlo":
        _checks.check_montecarlo_work(args.replications, args.tokens, ("--replications", "--tokens"))
    if args.command == "simulate":
        _checks.check_des_work(args.tokens, args.replications, ("--tokens", "--replications"))


def _check_run_flags(args) -> None:
    """Seeds and output paths, checked before any work starts (every subcommand)."""
    seed = getattr(args, "seed", 0)
    if seed is not None and seed < 0:
        raise SimspecError(f"--seed must be an integer >= 0, got {seed}")
    if args.command == "demo" and args.replications >= 2:
        from . import _checks
        from .reference import DSI_PAPER_TABLE

        positions = 50 * len(DSI_PAPER_TABLE)  # the demo's table: 50 tokens per model pair
        _checks.check_work(f"--replications × {positions} positions", float(args.replications) * positions,
                           _checks.MAX_MC_POSITIONS,
                           f"lower --replications to at most {_checks.MAX_MC_POSITIONS // positions}", unit="positions")
    for flag in ("trace", "gantt", "plot"):
        path = getattr(args, flag, None)
        if path:
            _check_output_file(f"--{flag}", Path(path))
    for flag in ("gantt", "plot"):
        if getattr(args, flag, None):
            _check_figure_format(f"--{flag}", Path(getattr(args, flag)))
    out = getattr(args, "out", None)
    if out is not None and args.command in ("heatmap", "demo"):
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise SimspecError(f"--out {out} is a file; give a folder (it is created if missing)")
        parent = out.resolve().parent
        if not out.exists() and not parent.is_dir():
            raise SimspecError(
                f"--out {out}: the folder {parent} does not exist; create it first or give an existing folder "
                "(simspec creates only the output folder itself)"
            )


def _check_output_file(flag: str, path: Path) -> None:
    if path.is_dir():
        raise SimspecError(f"{flag} {path} is a folder; give a file name in it")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise SimspecError(f"{flag} {path}: the folder {parent} does not exist; create it first or fix the path")


def _check_figure_format(flag: str, path: Path) -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = path.suffix.lower().lstrip(".")
    formats = sorted(set(FigureCanvasBase.get_supported_filetypes()) - {"pgf"})  # pgf needs a LaTeX install
    if suffix and suffix not in formats:
        raise SimspecError(f"{flag} {path}: matplotlib cannot write .{suffix}; end the name in one of "
                           + ", ".join("." + f for f in formats) + " (no suffix writes PNG)")


def _bursty(args, markov):
    """``--burstiness`` (with ``--easy-acceptance``/``--hard-acceptance``): errors name the flags."""
    if not 0.0 <= args.burstiness < 1.0:
        raise SimspecError(f"--burstiness must be in [0, 1), got {args.burstiness:g}")
    easy, hard = args.easy_acceptance, args.hard_acceptance
    for flag, value in (("--easy-acceptance", easy), ("--hard-acceptance", hard)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise SimspecError(f"{flag} must be a probability in [0, 1], got {value:g}")
    try:
        return markov.from_mean(args.acceptance, args.burstiness, easy, hard)
    except ValueError:
        a = args.acceptance
        hard = min(0.2, a / 2) if hard is None else hard
        easy = max(0.95, (1 + a) / 2) if easy is None else easy
        raise SimspecError(
            f"--acceptance {a:g} must lie between --hard-acceptance ({hard:g}) and --easy-acceptance ({easy:g}), "
            "which must differ; change them, or drop both to derive them from --acceptance"
        ) from None


def _scenario(args):
    _check_flags(args)
    from .acceptance import IIDAcceptance, MarkovAcceptance
    from .deployment import Deployment, Overheads
    from .latency import AffineLatency, ConstantLatency
    from .scenario import Scenario

    if args.acceptance_trace:
        from .traces import read_acceptance

        acc = read_acceptance(args.acceptance_trace, wrap=args.wrap)
    elif args.burstiness is not None:
        acc = _bursty(args, MarkovAcceptance)
    else:
        acc = IIDAcceptance(args.acceptance)
    if args._target_model is not None:
        target = args._target_model
    elif args.verify_ms_per_token:
        target = AffineLatency(args.target_ms, args.verify_ms_per_token, args.target_ttft_ms)
    else:
        target = ConstantLatency(args.target_ms, args.target_ttft_ms)
    drafter = args._drafter_model if args._drafter_model is not None else ConstantLatency(args.drafter_ms,
                                                                                           args.drafter_ttft_ms)
    deployment = Deployment(servers=args.servers, chain=not args.no_chain, queue=getattr(args, "queue", "fifo"),
                            overheads=Overheads(getattr(args, "message_ms", 0.0), getattr(args, "sync_ms", 0.0),
                                                getattr(args, "startup_ms", 0.0)))
    learned = getattr(args, "policy", "static") in ("disco", "specdec")
    if learned:
        from .policy_ranking import with_signal

        acc, note = with_signal(acc)
        if note:
            print(f"simspec {args.command}: note: {note}", file=sys.stderr)
    # from_profiles adds a profile's loop overheads to the deployment's (ConstantLatency has none)
    s = Scenario.from_profiles(target, drafter, acc, lookahead="best" if learned else _policy(args),
                               tokens=args.tokens, k_max=args.k_max, deployment=deployment)
    if learned:
        from .policy_ranking import train_learned

        k = _lookahead(args.lookahead)
        s = s.replace(lookahead=train_learned(s, args.policy, k_max=20 if k == "best" else k,
                                              rng=(getattr(args, "seed", 0) or 0) + 1))
    cv = getattr(args, "latency_cv", 0.0)
    if cv:
        from .latency import StochasticLatency

        s = s.replace(target=StochasticLatency(target, cv), drafter=StochasticLatency(drafter, cv))
    return s


def _needs_closed_form(scenario) -> None:
    """compare and plan use the closed forms or the Monte Carlo: a scenario they cannot model is sent to simulate."""
    from .planner import closed_form_applies

    why = closed_form_applies(scenario)
    if why is not None:
        raise SimspecError(f"{why}: the closed forms and the Monte Carlo cannot model it; run `simspec simulate "
                           "--algorithm nonsi|si|dsi` (the discrete-event engine) with the same flags")


def _with_flag(value: str | None) -> tuple[str, ...]:
    """``--with tree,pearl,pipeline``: the extra algorithms of compare, in order, without repeats."""
    from .compare import EXTRAS

    if value is None:
        return ()
    names: list[str] = []
    for item in value.split(","):
        name = item.strip().lower()
        if name not in EXTRAS:
            raise SimspecError(f"--with takes a comma-separated list of {', '.join(EXTRAS)}, got {item.strip()!r}"
                               " (non-SI, SI and DSI are always compared)")
        if name not in names:
            names.append(name)
    return tuple(names)


def _cmd_compare(args) -> int:
    from .compare import compare

    extra = _with_flag(args.extra)
    if "pipeline" in extra and args.method == "theory":
        raise SimspecError("--with pipeline has no closed form: add --method montecarlo (or run `simspec simulate "
                           "--algorithm pipeline`)")
    scenario = _scenario(args)
    if {"pearl", "pipeline"} & set(extra) and args.method == "montecarlo":  # a discrete-event run per replication
        from . import _checks

        _checks.check_des_work(args.tokens, args.replications, ("--tokens", "--replications"))
    _needs_closed_form(scenario)
    tree_kw = _tree_flags(args, scenario.acceptance.mean, "tree" in extra, "--with tree")
    cmp = compare(scenario, args.method, replications=args.replications, rng=args.seed, extra=extra, **tree_kw)
    if args.json:
        print(json.dumps(cmp.to_dict(), allow_nan=False, default=_json_default))
        return 0
    print(cmp)
    if args.method == "montecarlo":
        print(f"(paired Monte Carlo, seed {args.seed})")
    return 0


def _window(value: str | None) -> tuple[float | None, float | None] | None:
    """``--gantt-window START:END`` in ms; either end may be empty."""
    if value is None:
        return None
    try:
        lo, hi = (float(x) if x.strip() else None for x in value.split(":"))
    except ValueError:
        raise SimspecError(f"--gantt-window must be START:END in ms (e.g. 0:500 or 1000:), got {value!r}") from None
    if (lo is not None and lo < 0) or (lo is not None and hi is not None and not hi > lo):
        raise SimspecError(f"--gantt-window must have 0 <= START < END, got {value!r}")
    return lo, hi


def _tree_flags(args, acceptance_mean: float, wanted: bool, owner: str) -> dict:
    """``--tree``, ``--tree-budget``, ``--sibling-acceptance``: tree SI's tree and law, as keywords of simulate,
    compare and serve; only when tree SI runs (``wanted``: ``owner`` is the flag that runs it).  The law's
    rank-1 rate is ``acceptance_mean``."""
    given = [f for f, v in (("--tree", args.tree), ("--tree-budget", args.tree_budget),
                            ("--sibling-acceptance", args.sibling_acceptance)) if v is not None]
    if not wanted:
        if given:
            raise SimspecError(f"{given[0]} sets the tree of {owner}")
        return {}
    if args.tree is not None and args.tree_budget is not None:
        raise SimspecError("give --tree (a shape) or --tree-budget (Sequoia's optimal tree), not both")
    from .trees import PositionalTreeAcceptance, TokenTree, optimal_tree

    law = None
    if args.sibling_acceptance is not None and not 0.0 <= args.sibling_acceptance <= 1.0:
        raise SimspecError(f"--sibling-acceptance must be a probability in [0, 1], got {args.sibling_acceptance:g}")
    if args.sibling_acceptance is not None or args.tree_budget is not None:
        law = PositionalTreeAcceptance.from_chain_rate(float(acceptance_mean), sibling_rate=args.sibling_acceptance)
    tree = None
    if args.tree is not None:
        try:
            branching = [int(x) for x in args.tree.split(",")]
        except ValueError:
            raise SimspecError(f"--tree must be children per node at each depth, e.g. 2,2,1, got {args.tree!r}") from None
        if not branching or min(branching) < 1:
            raise SimspecError(f"--tree must hold integers >= 1, got {args.tree!r}")
        tree = TokenTree.k_ary(branching)
    elif args.tree_budget is not None:
        if args.tree_budget < 1:
            raise SimspecError(f"--tree-budget must be an integer >= 1, got {args.tree_budget}")
        tree = optimal_tree(args.tree_budget, law)
    return {"tree": tree, "tree_acceptance": law}


def _cmd_simulate(args) -> int:
    from .des import simulate

    scenario = _scenario(args)
    dsi_tree = args.algorithm == "dsi" and (args.tree is not None or args.tree_budget is not None)
    tree_kw = _tree_flags(args, scenario.acceptance.mean, args.algorithm == "tree" or dsi_tree,
                          "--algorithm tree (or --algorithm dsi with --tree/--tree-budget: tree tasks)")
    window = _window(args.gantt_window)
    if window is not None and not args.gantt:
        raise SimspecError("--gantt-window needs --gantt FILE")
    # --trace streams to its file as the run goes; only --gantt needs the events in memory
    kwargs = dict(replications=args.replications, rng=args.seed, progress=args.progress, trace=bool(args.gantt),
                  trace_path=args.trace)
    if args.workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers) as ex:
            res = simulate(scenario, args.algorithm, executor=ex, **kwargs, **tree_kw)
    else:
        res = simulate(scenario, args.algorithm, **kwargs, **tree_kw)
    if args.gantt:
        from .plots import gantt_figure, save_figure

        r0 = res.runs[0]
        title = (f"{args.algorithm.upper()}: lookahead {r0.lookahead}, servers {r0.servers or 'unlimited'}, "
                 f"c = {scenario.c:.3g}, acceptance {scenario.acceptance.mean:.3g} — replication 1")
        save_figure(gantt_figure(res.events, title, window=window), args.gantt)
    if args.json:
        print(json.dumps(res.to_dict(), default=_json_default))
        return 0
    print(res)
    jitter = f", latency jitter cv {args.latency_cv:g}" if args.latency_cv else ""
    print(f"(seed {args.seed}{jitter})")
    for path in (args.trace, args.gantt):
        if path:
            print(f"wrote {path}")
    return 0


def _cmd_plan(args) -> int:
    from .plan import plan

    if args.servers is not None:
        raise SimspecError("plan sweeps the servers itself: drop --servers and give --max-servers N")
    if args.lookahead != "best":
        raise SimspecError("plan picks the best lookahead at every server count: drop --lookahead")
    if args.max_servers < 1:
        raise SimspecError(f"--max-servers must be an integer >= 1, got {args.max_servers}")
    scenario = _scenario(args)
    _needs_closed_form(scenario)
    result = plan(scenario, args.max_servers, objective=args.objective, method=args.method, rng=args.seed)
    if args.plot:
        from .plots import save_figure

        save_figure(result.figure(), args.plot)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False, default=_json_default))
        return 0
    print(result)
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _json_default(o):
    if isinstance(o, float) and math.isnan(o):
        return None
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def _cmd_vocab(args) -> int:
    import numpy as np

    from .sampling.setups import evaluation_contexts, synthetic_pair
    from .sampling.verifiers import verifiers
    from .records import Estimate

    if args.temperature < 0 or not math.isfinite(args.temperature):
        raise SimspecError(f"--temperature must be >= 0, got {args.temperature:g}")
    for flag, value in (("--contexts", args.contexts), ("--samples", args.samples)):
        if value < 1:
            raise SimspecError(f"{flag} must be an integer >= 1, got {value}")
    verifier = verifiers()[args.algorithm]
    if verifier.shared_vocabulary and args.overlap != 1.0:
        others = "/".join(n for n, w in verifiers().items() if not w.shared_vocabulary)
        raise SimspecError(f"--algorithm {args.algorithm} needs one shared vocabulary: drop --overlap or pick {others}")
    pair = synthetic_pair(args.overlap, args.prune, args.temperature, args.closeness, args.seed,
                          kernel=verifier.kernel)
    rng = np.random.default_rng(args.seed)
    closed, empirical, tv_exact, forwards = [], [], [], []
    counts = np.zeros(len(pair.target.vocab))
    expected = np.zeros(len(pair.target.vocab))
    for ctx in evaluation_contexts(pair.target, args.contexts, seed=args.seed + 1):
        law = pair.step(args.algorithm, ctx)
        closed.append(law.acceptance)
        tv_exact.append(0.5 * float(np.abs(law.output_law - law.p).sum()))
        forwards.append(law.drafter_forwards)
        smp = law.sample(rng, args.samples)
        empirical.append(smp.accepted.mean())
        counts += np.bincount(smp.emitted[smp.emitted < counts.size], minlength=counts.size)
        expected += law.p * args.samples
    # the contexts are the independent units; each context's rate is in [0, 1], so Wilson's interval (never past
    # 0 or 1) is a conservative one for their mean
    acc = Estimate.proportion(float(np.mean(empirical)), len(empirical))
    acc_mean, acc_low, acc_high = acc.mean, acc.low, acc.high
    tv_emp = 0.5 * float(np.abs(counts / counts.sum() - expected / expected.sum()).sum())
    # what sampling noise alone gives: E|freq - p| summed, ~ sqrt(2/(pi n)) * sum sqrt(p(1-p))
    n = counts.sum()
    pbar = expected / expected.sum()
    tv_noise = 0.5 * float(np.sqrt(2 / (np.pi * n)) * np.sqrt(pbar * (1 - pbar)).sum())
    vm = pair.vocab_map
    out = {
        "algorithm": args.algorithm, "target_vocab": len(vm.target), "drafter_vocab": len(vm.drafter),
        "overlap": vm.overlap, "temperature": args.temperature, "contexts": args.contexts,
        "acceptance": acc_mean, "acceptance_ci": [acc_low, acc_high], "acceptance_ci_method": "wilson, 95%, n = contexts",
        "acceptance_closed_form": float(np.mean(closed)),
        "tv_to_target": max(tv_exact), "tv_to_target_empirical": tv_emp, "tv_sampling_noise": tv_noise,
        "drafter_forwards_per_verification": float(np.mean(forwards)), "target_forwards_per_verification": 1.0,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.algorithm} on a synthetic pair: |T| = {out['target_vocab']}, |D| = {out['drafter_vocab']}, "
          f"overlap |I|/|T| = {vm.overlap:.3f}, temperature {args.temperature:g}, {args.contexts} contexts")
    print(f"  acceptance (empirical)            {acc_mean:.4g}   (95% interval {acc_low:.4g} to {acc_high:.4g}, "
          f"Wilson, {len(empirical)} contexts)")
    print(f"  acceptance (closed form)          {out['acceptance_closed_form']:.4f}")
    print(f"  TV(output law, target), exact     {out['tv_to_target']:.2e}   (lossless: 0 up to rounding)")
    print(f"  TV(sampled output, target)        {tv_emp:.4f}   (sampling noise alone: about {tv_noise:.4f})")
    print(f"  drafter forwards per verification {out['drafter_forwards_per_verification']:.3g}")
    return 0


def _cmd_heatmap(args) -> int:
    from .heatmap import heatmap

    t0 = time.perf_counter()
    mark = _mark(args.mark)
    kwargs = {"rng": args.seed} if args.protocol == "repo" else {}
    hm = heatmap(args.protocol, **kwargs)
    command = f"simspec heatmap --protocol {args.protocol}" + (f" --seed {args.seed}" if args.protocol == "repo" else "")
    paths = hm.write(args.out, png=not args.no_png, command=command, mark=mark)
    d = hm.speedup["dsi_vs_baseline"]
    print(f"{args.protocol} protocol: {hm.a.size * hm.c.size} cells in {time.perf_counter() - t0:.2f} s; "
          f"DSI vs faster of SI/non-SI: max {d.max():.2f}x, min {d.min():.2f}x; DSI vs SI max "
          f"{hm.speedup['dsi_vs_si'].max():.2f}x")
    if args.protocol == "repo":
        print(f"(Monte Carlo with seed {args.seed}: 5 repeats of 1000 tokens per cell, so the extremes move "
              "with the seed by a few percent)")
    for p in paths:
        print(f"wrote {p}")
    return 0


def _mark(value: str | None) -> tuple[float, float] | None:
    """``--mark C,A``: a point to mark on the heatmap."""
    if value is None:
        return None
    try:
        c, a = (float(x) for x in value.split(","))
    except ValueError:
        raise SimspecError(f"--mark must be two numbers C,A (e.g. 0.1,0.8), got {value!r}") from None
    if not (c > 0 and math.isfinite(c)) or not 0.0 <= a <= 1.0:
        raise SimspecError(f"--mark needs a latency ratio C > 0 and an acceptance A in [0, 1], got {value!r}")
    return c, a


def _cmd_demo(args) -> int:
    from .demo import dsi_paper_table, format_table
    from .heatmap import paper_heatmap

    if args.replications < 2:
        raise SimspecError(f"--replications must be an integer >= 2, got {args.replications}")
    rows = dsi_paper_table(rng=args.seed, reps=args.replications)
    hm = paper_heatmap()
    if args.out is None:
        import tempfile

        args.out = str(Path(tempfile.gettempdir()) / "simspec-demo")
    paths = hm.write(args.out, command="simspec demo")
    if args.json:
        print(json.dumps({"rows": [r.to_dict() for r in rows], "files": [str(p) for p in paths]}))
    else:
        print(format_table(rows))
        print(f"\nheatmap (paper protocol): DSI up to {hm.speedup['dsi_vs_baseline'].max():.2f}x faster than the "
              f"faster of SI and non-SI (paper: 'up to 1.6x'); never slower (min "
              f"{hm.speedup['dsi_vs_baseline'].min():.2f}x)")
        for p in paths:
            print(f"wrote {p}")
    return 0


def _replay_model(args, who: str):
    from .latency import ConstantLatency
    from .profiles import load_profile, profile_spec

    spec = getattr(args, f"{who}_profile")
    if spec is not None:
        return load_profile(*profile_spec(spec))
    ms = getattr(args, f"{who}_ms")
    if not (ms > 0 and math.isfinite(ms)):
        raise SimspecError(f"--{who}-ms must be a latency in ms > 0, got {ms:g}")
    return ConstantLatency(ms, ms)


def _cmd_sweep(args) -> int:
    from .sweeps import load_sweep_file, sweep

    grid, run = load_sweep_file(args.file)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SimspecError(f"--out {out} is a file; give a folder (it is created if missing)")
    if not out.resolve().parent.is_dir():
        raise SimspecError(f"--out {out}: the folder {out.resolve().parent} does not exist")
    out.mkdir(exist_ok=True)
    kind = args.executor
    executor, close = None, None
    if kind.startswith("processes:"):
        try:
            n = int(kind.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise SimspecError(f"--executor processes:N needs an integer N >= 1, got {kind!r}")
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(n)
        close = executor.shutdown
    elif kind.startswith("dask://"):
        try:
            from dask.distributed import Client
        except ImportError:
            raise SimspecError('--executor dask://... needs Dask distributed: pip install "simspec[cluster]"') from None
        client = Client(kind[len("dask://"):])
        executor, close = client, client.close
    elif kind != "local":
        raise SimspecError(f"--executor must be local, processes:N or dask://HOST:PORT, got {kind!r}")
    try:
        res = sweep(grid, engine=run.get("engine", "compare"), method=run.get("method", "montecarlo"),
                    algorithm=run.get("algorithm", "dsi"), replications=run.get("replications"),
                    rng=run.get("seed", 0), batch=run.get("batch", 4), executor=executor, extra=run.get("extra", ()),
                    out=out / "rows.jsonl", resume=args.resume, progress=args.progress)
    finally:
        if close is not None:
            close()
    print(f"{len(res.rows)} rows in {res.path}")
    return 0


def _cmd_lookahead(args) -> int:
    from .policy_ranking import rank_policies

    if args.lookahead != "best" or args.policy != "static":
        raise SimspecError("lookahead runs every policy itself: drop --lookahead and --policy")
    if args.num_assistant_tokens < 1:
        raise SimspecError(f"--num-assistant-tokens must be an integer >= 1, got {args.num_assistant_tokens}")
    scenario = _scenario(args)
    res = rank_policies(scenario, replications=args.replications, rng=args.seed, k_max=args.num_assistant_tokens)
    print(json.dumps(res.to_dict()) if args.json else res)
    return 0


def _cmd_replay(args) -> int:
    from .assisted import assisted_rounds
    from .replay import replay_rounds
    from .scenario import model_overheads
    from .traces import RoundTrace, builtin_trace_path, load_acceptance_trace, load_round_trace, trace_kind

    target, drafter = _replay_model(args, "target"), _replay_model(args, "drafter")
    overheads = model_overheads(target, drafter)
    path = args.trace
    if path.startswith("builtin:"):
        path = builtin_trace_path(path[len("builtin:"):])
    if not Path(path).is_file():
        raise SimspecError(f"no trace file {args.trace!r}")
    how = "recorded rounds"
    if trace_kind(path) == "rounds":
        rounds = load_round_trace(path)
    else:
        acc = load_acceptance_trace(path)
        probs = (acc.signals or {}).get("top1_prob")
        if args.confidence_threshold and probs is None:
            raise SimspecError(f"{args.trace}: the trace has no top1_prob signal, which a confidence threshold "
                               "needs; give --confidence-threshold 0")
        rows, unobserved = [], 0
        for i, (pid, outs) in enumerate(zip(acc.prompts, acc.traces)):
            if None in outs and not args.unobserved_as_rejected:
                raise SimspecError(f"{args.trace}: prompt {pid!r} has unobserved positions (null outcomes); add "
                                   "--unobserved-as-rejected to count them as rejected drafts")
            unobserved += sum(o is None for o in outs)
            out = [0 if o is None else int(o) for o in outs]
            n = len(out) if args.tokens is None else args.tokens
            if n > len(out):
                raise SimspecError(f"--tokens {n} exceeds prompt {pid!r}'s trace of {len(out)} positions")
            rows += assisted_rounds(out, None if probs is None else probs[i], max_new_tokens=n,
                                    num_assistant_tokens=args.num_assistant_tokens, schedule=args.schedule,
                                    confidence_threshold=args.confidence_threshold or None, prompt=pid,
                                    prompt_len=acc.prompt_lens[i])
        rounds = RoundTrace.from_rows(rows, acc.provenance)
        how = (f"rounds rebuilt: num_assistant_tokens {args.num_assistant_tokens}, schedule {args.schedule}, "
               f"confidence threshold {args.confidence_threshold:g}"
               + (f"; {unobserved} unobserved positions counted as rejected" if unobserved else ""))
    res = replay_rounds(rounds, target, drafter, overheads, prompt_len=args.prompt_len)
    if args.json:
        print(json.dumps({"rounds": how, **res.to_dict()}))
    else:
        print(f"{how}; overheads: " + (", ".join(f"{k} {v:g}" for k, v in res.overheads.items() if v) or "none"))
        print(res)
    return 0


def _warning_line(command: str):
    """simspec's own warnings (a profile asked outside its range, ...) as one line each on stderr, no source line."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("simspec"):
            print(f"simspec {command}: warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        commands = {"compare": _cmd_compare, "simulate": _cmd_simulate, "plan": _cmd_plan, "vocab": _cmd_vocab,
                    "heatmap": _cmd_heatmap, "demo": _cmd_demo, "replay": _cmd_replay,
                    "lookahead": _cmd_lookahead, "sweep": _cmd_sweep}
        from .real.cli import COMMANDS as _real_commands
        from .serving.cli import COMMANDS as _serve_commands

        commands.update(_real_commands)
        commands.update(_serve_commands)
        _check_run_flags(args)
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line(args.command)
            return commands[args.command](args)
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr.close()
        return 0
    except (SimspecError, OSError) as exc:
        print(f"simspec {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
