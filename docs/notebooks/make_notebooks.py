"""Writes the notebooks of docs/notebooks from the cells below, without outputs (the source to review and edit).

    python docs/notebooks/make_notebooks.py     # from the repository root

tests/test_notebooks.py runs every notebook top to bottom (nbclient) and checks that its first
code cell draws a figure.
"""

import nbformat
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

def write(path, cells):
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                             "language_info": {"name": "python"}})
    nbformat.write(nb, path)

write("docs/notebooks/lookahead_policies.ipynb", [
    new_markdown_cell("# Which lookahead policy for my pair?\n\nEvery policy (best static k, transformers' heuristic and confidence stop, the adaptive threshold, DISCO, SpecDec++, the oracle) runs on the same acceptance outcomes and drafter signals; the bars are the gain over the best static lookahead, with 95% intervals. Change the scenario in the first cell."),
    new_code_cell("""%matplotlib inline
import simspec
from simspec.policy_ranking import rank_policies

scenario = simspec.Scenario.from_ms(target_ms=30.0, drafter_ms=3.0,
                                    acceptance=simspec.MarkovAcceptance.from_mean(0.8, burstiness=0.9), tokens=200)
ranking = rank_policies(scenario, replications=100, rng=0)
ranking.figure()"""),
    new_markdown_cell("The same ranking as a table (it prints the same way in a terminal):"),
    new_code_cell("ranking"),
    new_markdown_cell("## The real pair on this project's CPU\n\nSmolLM2-135M drafting for Gemma-3-270M: the shipped trace (acceptance 0.674) and profiles (the drafter costs 0.58 of a target forward). With a drafter this slow, no dynamic policy beats the best static k."),
    new_code_cell("""import warnings
from simspec.profiles import builtin_profile
from simspec.traces import builtin_trace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # short prompts read the profiles' nearest measured context
    pair = simspec.Scenario.from_profiles(builtin_profile("cpu-real-pair", "gemma3-270m"),
                                          builtin_profile("cpu-real-pair", "smollm2-135m"),
                                          builtin_trace("cpu-real-pair"), tokens=64)
    real = rank_policies(pair, replications=32, rng=0)
real.figure()"""),
    new_code_cell("real"),
])

write("docs/notebooks/speedup_bounds.ipynb", [
    new_markdown_cell("# Speedup bounds: non-SI, SI and DSI\n\nThe closed forms over the drafter's cost `c` (drafter / target forward time) and the acceptance rate `a`: SI's speedup over non-SI at its best lookahead, and DSI's over SI. With `ipywidgets` installed (`pip install \"simspec[notebooks]\"`) the last cell has sliders; without it, the figure below is the answer."),
    new_code_cell("""%matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import simspec
from simspec import theory

a = np.linspace(0.5, 0.95, 10)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for c in (0.05, 0.1, 0.2, 0.4):
    si = [simspec.compare(simspec.Scenario.from_ms(30.0, 30.0 * c, float(ai)), "theory").speedup["si_vs_nonsi"].mean for ai in a]
    dsi = [simspec.compare(simspec.Scenario.from_ms(30.0, 30.0 * c, float(ai)), "theory").speedup["dsi_vs_nonsi"].mean for ai in a]
    axes[0].plot(a, si, marker="o", label=f"c = {c:g}")
    axes[1].plot(a, dsi, marker="o", label=f"c = {c:g}")
axes[0].set_title("SI vs non-SI (best k)")
axes[1].set_title("DSI vs non-SI (best k)")
for ax in axes:
    ax.set_xlabel("acceptance a")
    ax.axhline(1, color="k", lw=0.8)
axes[0].set_ylabel("speedup (x)")
axes[0].legend()
plt.show()"""),
    new_markdown_cell("One point in full: the table every engine prints."),
    new_code_cell("simspec.compare(simspec.Scenario.from_ms(30.0, 3.0, 0.8), 'theory')"),
    new_code_cell("""try:
    import ipywidgets as widgets
except ImportError:
    widgets = None
    print("ipywidgets is not installed: the figure above is the static version")

if widgets is not None:
    @widgets.interact(c=(0.01, 0.5, 0.01), a=(0.3, 0.99, 0.01))
    def show(c=0.1, a=0.8):
        return simspec.compare(simspec.Scenario.from_ms(30.0, 30.0 * c, a), "theory")"""),
])

write("docs/notebooks/dsi_design.ipynb", [
    new_markdown_cell("# How many GPUs for my pair?\n\nSI and DSI over 1..N target servers, each at its best lookahead: latency per token and GPU-seconds per token, the knee (where one more server stops paying) and the Pareto front. Change the pair in the first cell; `simspec plan` prints the same from the command line."),
    new_code_cell("""%matplotlib inline
import simspec
from simspec.plan import plan

pair = simspec.Scenario.from_ms(target_ms=30.0, drafter_ms=3.0, acceptance=0.8)
result = plan(pair, 8)
result.figure()"""),
    new_code_cell("result"),
    new_markdown_cell("A slower drafter needs fewer servers before DSI stops paying:"),
    new_code_cell("plan(pair.replace(drafter=simspec.ConstantLatency(9.0)), 8).figure()"),
])

write("docs/notebooks/real_pair.ipynb", [
    new_markdown_cell("# A real pair: predicted vs measured\n\nSmolLM2-135M drafting for Gemma-3-270M on this project's CPU (`experiments/real_pair`): for every setting of transformers' own `generate`, simspec's predicted speedup (measured profiles, rounds found with the real drafter, fitted loop overheads) against the measured one, with the ±10% band. The measurements ship in `experiments/real_pair/out/results.json`; re-run the experiment to measure your machine."),
    new_code_cell("""%matplotlib inline
import json
from pathlib import Path
import numpy as np
from matplotlib.figure import Figure

results = json.loads((Path("..") / ".." / "experiments" / "real_pair" / "out" / "results.json").read_text())
fig = Figure(figsize=(5.5, 4.5), layout="constrained")
ax = fig.subplots()
for s in results["summary"]:
    ax.scatter(s["measured_speedup"], s["predicted_speedup"], s=30)
    ax.annotate(s["setting"], (s["measured_speedup"], s["predicted_speedup"]), fontsize=7,
                xytext=(4, -3), textcoords="offset points")
lim = np.array([0.3, 1.7])
ax.plot(lim, lim, color="black", lw=0.8)
ax.fill_between(lim, 0.9 * lim, 1.1 * lim, color="gray", alpha=0.2, label="±10%")
ax.axvline(1, color="gray", lw=0.5); ax.axhline(1, color="gray", lw=0.5)
ax.set_xlabel("measured speedup over plain decoding (x)")
ax.set_ylabel("predicted (x)")
ax.legend(loc="upper left")
fig"""),
    new_markdown_cell("The table behind it, one row per setting (mean of 8 runs: 4 prompts x 2 lengths):"),
    new_code_cell("""for s in results["summary"]:
    print(f"{s['setting']:<22} measured {s['measured_speedup']:.3f}x  predicted {s['predicted_speedup']:.3f}x  "
          f"error {100 * s['error']:+.1f}%  rounds {'exact' if s['rounds_match'] else 'differ'}")"""),
])

write("docs/notebooks/vocabulary.ipynb", [
    new_markdown_cell("# Two vocabularies: which verifier, and how far can I prune the drafter's?\n\nOn a synthetic drafter/target pair (one character process, two vocabularies; `simspec vocab` runs the same), the closed-form acceptance of each lossless verifier as the drafter's vocabulary shares less with the target's, and as it is pruned. Every verifier keeps the target's output law exactly (`tests/test_lossless.py`)."),
    new_code_cell("""%matplotlib inline
import numpy as np
from matplotlib.figure import Figure
from simspec.sampling.setups import evaluation_contexts, synthetic_pair
from simspec.sampling.verifiers import verifiers

def acceptance(algorithm, overlap=1.0, prune=0.0, contexts=30, seed=0):
    pair = synthetic_pair(overlap, prune, 1.0, 0.9, seed, kernel=verifiers()[algorithm].kernel)
    return float(np.mean([pair.step(algorithm, ctx).acceptance
                          for ctx in evaluation_contexts(pair.target, contexts, seed=seed + 1)]))

overlaps = [0.0, 0.25, 0.5, 0.75, 1.0]
prunes = [0.0, 0.2, 0.4, 0.6]
fig = Figure(figsize=(9, 3.3), layout="constrained")
left, right = fig.subplots(1, 2, sharey=True)
for algorithm in ("union", "tli", "slrs", "rdk"):
    left.plot(overlaps, [acceptance(algorithm, overlap=o) for o in overlaps], marker="o", label=algorithm)
    right.plot(prunes, [acceptance(algorithm, prune=p) for p in prunes], marker="o", label=algorithm)
left.set_xlabel("share of the target's multi-character tokens the drafter has")
right.set_xlabel("share of the drafter's vocabulary pruned (least frequent first)")
left.set_ylabel("acceptance per draft")
left.legend()
fig"""),
    new_markdown_cell("One verifier in full, as `simspec vocab --algorithm rdk --prune 0.4` prints it:"),
    new_code_cell("""from simspec.cli import main
main(["vocab", "--algorithm", "rdk", "--prune", "0.4", "--contexts", "20"])"""),
])

write("docs/notebooks/serving_load.ipynb", [
    new_markdown_cell("# Does my drafter pay under load?\n\nLlama-3-8B on one H100, priced by simspec's roofline (bandwidth efficiency 0.8, compute 0.6, 1.5 ms per forward: stated assumptions, change them below), with a 1B draft model beside it: SI's speedup over plain decoding as the request rate grows, on a continuous-batching engine (`simspec.serve`). The dashed line is the median time per output token, the solid one the mean end-to-end latency; 1x is where SI stops paying."),
    new_code_cell("""%matplotlib inline
import simspec
from simspec import IIDAcceptance, RooflineLatency, load_curve

eff = dict(efficiency=0.8, compute_efficiency=0.6, overhead_ms=1.5)
target = RooflineLatency("llama-3-8b", "H100", **eff)
drafter = RooflineLatency("llama-3.2-1b", "H100", **eff)
curve = load_curve([0.5, 4, 16, 48], target, drafter, IIDAcceptance(0.7), prompt_len=512, output_len=128,
                   requests=120, lookahead=4, batching=simspec.Batching(max_batch=64, drafter="shared"),
                   replications=2, rng=0)
curve.figure()"""),
    new_markdown_cell("The same curve as a table, with where it crosses 1:"),
    new_code_cell("curve"),
    new_markdown_cell("## Which k at which batch size?\n\nEvery request arrives at once, so the batch stays full: SI's throughput over plain decoding for each lookahead."),
    new_code_cell("""from simspec import best_k_by_batch

table = best_k_by_batch([1, 16, 64], [1, 2, 3, 4, 6], target, drafter, IIDAcceptance(0.7), prompt_len=512,
                        output_len=64, batching=simspec.Batching(drafter="shared"), replications=1, rng=0)
table.figure()"""),
    new_code_cell("table.best_k()"),
    new_markdown_cell("## A token tree under load\n\nThe same pair with tree SI beside the chain: a tree of the chain's depth with two candidates at the first two levels (`TokenTree.k_ary([2, 2, 1, 1])`, 14 nodes), second candidates accepted at 0.35 (an assumption: set your own). It wins while the batch is small; each sequence then puts 15 tokens into every step instead of 5, the batch turns compute-bound sooner, and the tree stops paying before the chain does."),
    new_code_cell("""from simspec import PositionalTreeAcceptance, TokenTree

trees = load_curve([0.5, 4, 16, 48], target, drafter, IIDAcceptance(0.7), prompt_len=512, output_len=128,
                   requests=120, lookahead=4, batching=simspec.Batching(max_batch=64, drafter="shared"),
                   replications=2, rng=0, algorithms=("nonsi", "si", "tree"), tree=TokenTree.k_ary([2, 2, 1, 1]),
                   tree_acceptance=PositionalTreeAcceptance.from_chain_rate(0.7, sibling_rate=0.35))
trees.figure()"""),
    new_code_cell("trees"),
    new_markdown_cell("## One request at a time\n\nEvery request's TTFT, TPOT and end-to-end latency, as a data frame (pandas):"),
    new_code_cell("""res = curve.results[-1]
res.to_frame(per_request=True).groupby("algorithm")[["ttft_ms", "tpot_ms", "e2e_ms"]].describe().T"""),
])

write("docs/notebooks/trees_and_overlap.ipynb", [
    new_markdown_cell("# Chain, tree, overlap or DSI for my pair?\n\nEvery algorithm on the same acceptance outcomes in the discrete-event engine: latency per token (bars) and GPU-seconds per token (dots). The target costs 30 ms plus 0.3 ms per extra token in a forward; change the pair in the first cell."),
    new_code_cell("""%matplotlib inline
from matplotlib.figure import Figure
from simspec import (AffineLatency, ConstantLatency, IIDAcceptance, PositionalTreeAcceptance, Scenario, best_tree,
                     simulate)

a, c = 0.8, 0.05
target, drafter = AffineLatency(30.0, 0.3), ConstantLatency(c * 30.0)
s = Scenario(target, drafter, IIDAcceptance(a), tokens=1000)
law = PositionalTreeAcceptance.from_chain_rate(a, sibling_rate=a / 2)   # second choices accepted less often
tree = best_tree(law, target, drafter).tree
runs = {
    "non-SI": simulate(s, "nonsi", replications=4, rng=0),
    "SI": simulate(s, "si", replications=4, rng=0),
    "tree": simulate(s, "tree", replications=4, rng=0, tree=tree, tree_acceptance=law),
    "PEARL": simulate(s, "pearl", replications=4, rng=0),
    "pipeline": simulate(s, "pipeline", replications=4, rng=0),
    "DSI (2 servers)": simulate(s.replace(servers=2), "dsi", replications=4, rng=0),
    "DSI, tree tasks": simulate(s.replace(servers=2), "dsi", replications=4, rng=0, tree=tree, tree_acceptance=law),
}
fig = Figure(figsize=(8, 3.2), layout="constrained")
ax = fig.subplots()
names = list(runs)
ax.bar(names, [r.latency_per_token_ms.mean for r in runs.values()], color="#0072B2")
ax.set_ylabel("latency per token (ms)")
ax2 = ax.twinx()
ax2.plot(names, [1000 * r.gpu_seconds_per_token.mean for r in runs.values()], "o", color="#D55E00")
ax2.set_ylabel("GPU-ms per token", color="#D55E00")
ax.set_title(f"a = {a}, c = {c}; tree: {tree.size} nodes, depth {tree.depth}")
ax.tick_params(axis="x", labelrotation=20)
fig"""),
    new_markdown_cell("## The best tree depends on the verification's cost\n\nSequoia's optimal tree for each budget, priced by the latency model: as the cost per extra token grows, the best tree shrinks."),
    new_code_cell("""fig = Figure(figsize=(8, 3.2), layout="constrained")
left, right = fig.subplots(1, 2)
slopes = [0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0]
choices = [best_tree(law, AffineLatency(10.0, s_), ConstantLatency(1.5), budgets=range(0, 65)) for s_ in slopes]
left.plot(slopes, [ch.tree.size for ch in choices], "o-")
left.set_xlabel("target's cost per extra token (ms, 10 ms forward)")
left.set_ylabel("best tree size (nodes)")
from simspec import TokenTree, expected_accepted_length, optimal_tree
budgets = [1, 2, 4, 8, 16, 32, 64]
for name, make in (("chain", TokenTree.chain), ("optimal", lambda n: optimal_tree(n, law))):
    right.plot(budgets, [expected_accepted_length(make(n), law) for n in budgets], "o-", label=name)
right.set_xscale("log", base=2)
right.set_xlabel("tree budget (nodes)")
right.set_ylabel("E[tokens per verification]")
right.legend()
fig"""),
    new_markdown_cell("The same comparison as `simspec compare --with tree,pearl` prints it (closed forms):"),
    new_code_cell("""from simspec import compare
compare(s, "theory", extra=("tree", "pearl"))"""),
])
