"""Union, TLI, SLEM and SLRS acceptance as the drafter's vocabulary overlap with the target's falls.

Usage:  python experiments/tli_overlap/run.py [--out DIR] [--seeds N] [--contexts N] [--quick] [--workers W] [--no-png]

Heterogeneous vocabularies (Timor, Mamou, Korat et al., arXiv 2502.05202).
Both models read one order-2 character process (``CharLanguage``) through their
own vocabulary and greedy tokenizer (``TokenLM``); the drafter reads a mixture
of it with an unrelated process (``MixedLanguage``, ``closeness`` 1 = the
target's own text law, lower = a worse drafter).  ``vocabulary_pair`` gives
both every character plus 48 multi-character words each; a fraction
``word_overlap`` of the target's words are also the drafter's, the rest of
the drafter's words are its own, so ``|I|/|T|`` falls from 1 to about 0.14.

Per (seed, closeness, word overlap), the closed-form acceptances of one
verification step are averaged over contexts sampled from the target's own
text (the law every lossless verifier emits):

* union ``Σ_{t∈I} min(p, q)``, TLI ``Σ_{t∈I} min(p, q/q(I))`` and their cap
  ``p(I)``;
* SLEM ``Σ_t p(t) ψ(t)`` and SLRS ``Σ_t min(p(t), ψ(t))``, with ``ψ`` the law
  of the first target token of the drafter's text (``first_token_law``), and
  their drafter forwards: SLRS needs ``ψ`` exactly (``enumeration_forwards``),
  SLEM drafts one path (``expected_path_forwards``, until the first target
  token is decided).

The character process is order 2, so a context's laws depend on its last two
characters only; each distinct context is computed once and weighted by how
often the sampled text visits it (exact, not an approximation).

Writes ``DIR/tli_overlap.csv``, ``DIR/summary.md`` and ``DIR/tli_overlap.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_experiment_numbers
from simspec.sampling import slem, slrs, tli
from simspec.sampling.models import CharLanguage, MixedLanguage, TokenLM, vocabulary_pair
from simspec.sampling.retokenize import first_token_law
from simspec.sampling.vocab import VocabularyMap

ALPHABET = "abcd "
ORDER = 2
N_WORDS = 48
OVERLAPS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
OVERLAPS_QUICK = (1.0, 0.5, 0.0)
CLOSENESS = (1.0, 0.7)
CLOSENESS_QUICK = (0.7,)
#: TLI acceptance vs vocabulary overlap |I|/|T|, vLLM port discussion (docs/model.md §9)
REFERENCE = ((1.0, 0.80), (0.998, 0.61), (0.798, 0.25), (0.696, 0.15))
COLUMNS = ("seed", "closeness", "word_overlap", "overlap", "n_target", "n_drafter", "union", "tli", "p_I", "slem",
           "slrs", "slrs_forwards", "slem_forwards", "contexts", "distinct_contexts", "union_gt_tli",
           "tli_gt_cap", "slem_gt_slrs")
_TOL = 1e-12


def context_counts(target: TokenLM, n: int, seed: int) -> Counter:
    """How often each (order-suffix) context occurs along ``n`` tokens of text the target writes itself."""
    rng = np.random.default_rng([seed, 1])
    text, counts = "", Counter()
    for _ in range(n):
        counts[text] += 1
        p = target.next_token_probs(text)
        text = (text + target.vocab.tokens[int(rng.choice(p.size, p=p))])[-ORDER:]
    return counts


def job(args: tuple) -> dict:
    """One (seed, closeness, word overlap): acceptances averaged over the target's own contexts."""
    seed, closeness, word_overlap, n_contexts = args
    lang = CharLanguage(ALPHABET, order=ORDER, seed=seed)
    other = CharLanguage(ALPHABET, order=ORDER, seed=seed + 10_007)
    T, D = vocabulary_pair(ALPHABET, N_WORDS, word_overlap, seed=seed)
    target = TokenLM(lang, T)
    drafter = TokenLM(MixedLanguage(lang, other, closeness), D)
    vm = VocabularyMap(T, D)
    shared = vm.target_to_drafter >= 0
    counts = context_counts(target, n_contexts, seed)
    keys = ("union", "tli", "p_I", "slem", "slrs", "slrs_forwards", "slem_forwards")
    acc = dict.fromkeys(keys, 0.0)
    bad = Counter()
    for ctx, w in counts.items():
        p = target.next_token_probs(ctx)
        q = drafter.next_token_probs(ctx)
        law = first_token_law(drafter, T, ctx)
        v = {
            "union": float(tli.union_acceptance(p, q, vm)), "tli": float(tli.tli_acceptance(p, q, vm)),
            "p_I": float(p[shared].sum()), "slem": float(slem.acceptance(p, law.psi)),
            "slrs": float(slrs.acceptance(p, law.psi)), "slrs_forwards": float(law.enumeration_forwards),
            "slem_forwards": float(law.expected_path_forwards),
        }
        for k in keys:
            acc[k] += w * v[k]
        bad["union_gt_tli"] += w * (v["union"] > v["tli"] + _TOL)
        bad["tli_gt_cap"] += w * (v["tli"] > v["p_I"] + _TOL)
        bad["slem_gt_slrs"] += w * (v["slem"] > v["slrs"] + _TOL)
    row = {k: acc[k] / n_contexts for k in keys}
    row.update(seed=seed, closeness=closeness, word_overlap=word_overlap, overlap=vm.overlap, n_target=len(T),
               n_drafter=len(D), contexts=n_contexts, distinct_contexts=len(counts),
               union_gt_tli=bad["union_gt_tli"], tli_gt_cap=bad["tli_gt_cap"], slem_gt_slrs=bad["slem_gt_slrs"])
    return row


def run(seeds, closeness, overlaps, n_contexts: int, workers: int) -> list[dict]:
    jobs = [(s, c, o, n_contexts) for s in seeds for c in closeness for o in overlaps]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            return list(ex.map(job, jobs))
    return [job(j) for j in jobs]


# -- outputs -----------------------------------------------------------------------------------------


def _group(rows: list[dict], closeness: float) -> dict[float, list[dict]]:
    out: dict[float, list[dict]] = {}
    for r in rows:
        if r["closeness"] == closeness:
            out.setdefault(r["word_overlap"], []).append(r)
    return dict(sorted(out.items(), reverse=True))


def _ms(rs: list[dict], key: str) -> tuple[float, float]:
    x = np.array([r[key] for r in rs], dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def _interp_tli(rows: list[dict], closeness: float, overlap: float) -> float:
    """Seed-mean TLI at ``|I|/|T| = overlap``, linear between the grid's points (nan outside it)."""
    g = _group(rows, closeness)
    x = np.array([_ms(rs, "overlap")[0] for rs in g.values()])
    y = np.array([_ms(rs, "tli")[0] for rs in g.values()])
    o = np.argsort(x)
    if overlap < x.min() - 1e-9 or overlap > x.max() + 1e-9:
        return float("nan")
    return float(np.interp(overlap, x[o], y[o]))


def summary(rows: list[dict], seeds, n_contexts: int, header: str, elapsed: float, workers: int) -> str:
    closeness = sorted({r["closeness"] for r in rows}, reverse=True)
    multi = len(seeds) > 1
    fmt = (lambda m, s: f"{m:.3f} ± {s:.3f}") if multi else (lambda m, s: f"{m:.3f}")
    L = [
        "# Union, TLI, SLEM and SLRS against vocabulary overlap",
        "",
        header,
        "",
        f"Order-{ORDER} character process over {ALPHABET!r}; target and drafter: every character plus {N_WORDS} "
        f"multi-character words each (`vocabulary_pair`), a fraction `word overlap` of the target's words shared. "
        f"{n_contexts} contexts per configuration, sampled from the target's own text. {len(seeds)} seed(s): "
        + ", ".join(map(str, seeds)) + "." + (" Cells: mean ± sd over seeds." if multi else ""),
        "",
        "Forwards: drafter forwards per verified position; SLRS = `enumeration_forwards` (every node of the "
        "enumeration that computes psi exactly), SLEM = `expected_path_forwards` (one sampled draft, until its "
        "first target token is decided).",
    ]
    for c in closeness:
        L += ["", f"## Drafter closeness {c:g}" + (" (same text process as the target)" if c == 1 else ""), "",
              "| word overlap | abs(I)/abs(T) | union | TLI | cap p(I) | SLEM | SLRS | SLRS forwards | SLEM forwards |",
              "|---|---|---|---|---|---|---|---|---|"]
        for o, rs in _group(rows, c).items():
            L.append(f"| {o:g} | {_ms(rs, 'overlap')[0]:.3f} | {fmt(*_ms(rs, 'union'))} | {fmt(*_ms(rs, 'tli'))} | "
                     f"{fmt(*_ms(rs, 'p_I'))} | {fmt(*_ms(rs, 'slem'))} | {fmt(*_ms(rs, 'slrs'))} | "
                     f"{_ms(rs, 'slrs_forwards')[0]:.1f} | {_ms(rs, 'slem_forwards')[0]:.2f} |")
    c_ref = min(closeness)
    t1 = _interp_tli(rows, c_ref, 1.0)
    L += ["", f"## Beside the reference (vLLM port discussion; simspec at closeness {c_ref:g})", "",
          "TLI at the reference's overlaps, linear between simspec's grid points, and as a fraction of TLI at "
          "full overlap (the shape to compare; the absolute level is set by the drafter's closeness).", "",
          "| abs(I)/abs(T) | reference TLI | reference / at 100% | simspec TLI | simspec / at 100% |",
          "|---|---|---|---|---|"]
    for o, a in REFERENCE:
        t = _interp_tli(rows, c_ref, o)
        L.append(f"| {100 * o:.1f}% | {a:.2f} | {a / REFERENCE[0][1]:.2f} | {t:.3f} | {t / t1:.2f} |")
    n = sum(r["contexts"] for r in rows)
    L += ["", "## Checks", "",
          f"Per context, over {n} (context, configuration) cases: "
          f"union > TLI in {sum(r['union_gt_tli'] for r in rows)}, "
          f"TLI > p(I) in {sum(r['tli_gt_cap'] for r in rows)}, SLEM > SLRS in {sum(r['slem_gt_slrs'] for r in rows)}.",
          "",
          f"Run time: {elapsed:.1f} s with {workers} worker(s)."]
    return "\n".join(L) + "\n"


def figure(rows: list[dict]):
    """Acceptance against overlap (a panel per drafter closeness, top) and the drafter cost of ψ (bottom), in
    simspec's figure style: each verifier in its colour (``simspec.plots.VERIFIER_COLOURS``), every axis with
    its unit, 7 inches wide."""
    from matplotlib.figure import Figure

    from simspec.plots import VERIFIER_COLOURS

    closeness = sorted({r["closeness"] for r in rows}, reverse=True)
    n = len(closeness)
    fig = Figure(figsize=(7.0, 6.6), layout="constrained")
    panels = fig.subplot_mosaic([[f"c{i}" for i in range(n)], ["cost"] * n], height_ratios=[1.15, 1])
    axes = [panels[f"c{i}"] for i in range(n)]
    styles = (("p_I", "cap p(I)", "--", None, "black"), ("tli", "TLI", "-", "o", VERIFIER_COLOURS["tli"]),
              ("union", "union", "-", "s", VERIFIER_COLOURS["union"]),
              ("slrs", "SLRS", "-", "^", VERIFIER_COLOURS["slrs"]), ("slem", "SLEM", "-", "v", VERIFIER_COLOURS["slem"]))
    for ax, c in zip(axes, closeness):
        g = _group(rows, c)
        x = np.array([_ms(rs, "overlap")[0] for rs in g.values()])
        for key, label, ls, marker, colour in styles:
            m = np.array([_ms(rs, key)[0] for rs in g.values()])
            s = np.array([_ms(rs, key)[1] for rs in g.values()])
            ax.plot(x, m, linestyle=ls, marker=marker, ms=4, color=colour, label=label)
            ax.fill_between(x, m - s, m + s, color=colour, alpha=0.15, lw=0)
        if c == min(closeness):
            ax.plot(*zip(*REFERENCE), "x", color=VERIFIER_COLOURS["tli"], ms=8, mew=2,
                    label="TLI, vLLM port (real pairs)")
        ax.set_xlim(1.02, min(x) - 0.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("vocabulary overlap |I| / |T| (fraction)", fontsize=8)
        ax.set_title(f"drafter closeness {c:g}", fontsize=8)
    axes[0].set_ylabel("acceptance of one position (probability)", fontsize=8)
    handles, labels = axes[n - 1].get_legend_handles_labels()
    axes[n - 1].legend(handles, labels, fontsize=7, loc="lower left")
    ax = panels["cost"]
    for c, mk in zip(closeness, "os^v"):
        g = _group(rows, c)
        x = np.array([_ms(rs, "overlap")[0] for rs in g.values()])
        ax.plot(x, [_ms(rs, "slrs_forwards")[0] for rs in g.values()], mk + "-", color=VERIFIER_COLOURS["slrs"],
                label=f"SLRS: enumeration, closeness {c:g}", alpha=0.5 + 0.5 * c)
        ax.plot(x, [_ms(rs, "slem_forwards")[0] for rs in g.values()], mk + "--", color=VERIFIER_COLOURS["slem"],
                label=f"SLEM: one path, closeness {c:g}", alpha=0.5 + 0.5 * c)
    ax.set_yscale("log")
    ax.set_xlim(1.02, min(x) - 0.02)
    ax.set_xlabel("vocabulary overlap |I| / |T| (fraction)", fontsize=8)
    ax.set_ylabel("drafter forwards per verified position (forwards)", fontsize=8)
    ax.set_title("drafter cost of psi", fontsize=8)
    ax.legend(fontsize=7)
    for a in [*axes, ax]:
        a.grid(alpha=0.3, which="both")
        a.tick_params(labelsize=7, which="both")
    fig.suptitle("Heterogeneous vocabularies: acceptance vs overlap (bands: sd over seeds)", fontsize=9)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default 4; --quick 1)")
    ap.add_argument("--contexts", type=int, default=None, help="contexts per configuration (default 400; --quick 150)")
    ap.add_argument("--quick", action="store_true", help="one seed, closeness 0.7, word overlaps 1, 0.5, 0 (tests)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: 1 with --quick, else min(2, CPUs))")
    ap.add_argument("--no-png", action="store_true", help="skip the figure")
    add_reference_flag(ap)
    args = ap.parse_args(argv)
    check_reference_flag(args)
    q = args.quick
    seeds = list(range(args.seeds or (1 if q else 4)))
    n_contexts = args.contexts or (150 if q else 400)
    workers = args.workers or (1 if q else min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    rows = run(seeds, CLOSENESS_QUICK if q else CLOSENESS, OVERLAPS_QUICK if q else OVERLAPS, n_contexts, workers)
    elapsed = time.perf_counter() - t0
    given = list(sys.argv[1:] if argv is None else argv)
    shown = " ".join(a for j, a in enumerate(given) if not a.startswith("--out") and not (j and given[j - 1] == "--out"))
    header = f"Generated by `python experiments/tli_overlap/run.py{' ' + shown if shown else ''}`."
    out = Path(args.out)
    table = [[r[c] for c in COLUMNS] for r in rows]
    write_csv(out / "tli_overlap.csv", COLUMNS, table)
    numbers = dict(experiment="tli_overlap", mode="quick" if q else "full", seeds=len(seeds), contexts=n_contexts)
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, table, reference=args.reference, **numbers)
    text = summary(rows, seeds, n_contexts, header, elapsed, workers)
    atomic_write_text(out / "summary.md", text)
    if not args.no_png:
        from simspec.plots import save_figure

        save_figure(figure(rows), out / "tli_overlap.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
