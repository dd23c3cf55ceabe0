"""TLI against RDK as the drafter's vocabulary is pruned from 0% to 95%.

Usage:  python experiments/rdk_pruning/run.py [--out DIR] [--seeds N] [--quick] [--no-png] [knobs]

The claim to reproduce in shape (Timor, Mamou, Pereg et al., arXiv 2506.03206):
RDK keeps acceptance high after more than 75% of the drafter's vocabulary is
pruned, where TLI collapses (TLI can never propose a pruned token, so its
acceptance is capped at ``p(I)``, the target's mass on the kept tokens).

Synthetic target over a vocabulary organised in *families* of look-alike
tokens (``" the"``, ``"the"``, ``" The"``, ``"The"``, ...): per context, family
logits are the family's Zipf log-frequency plus Gaussian noise, and the
within-family shares are Zipf-like (the head member frequent, tails rare) with
per-context log-normal noise.  The members of a family therefore rise and fall
together across contexts, which is what RDK's affinity kernel can learn.

Drafter: the target's law restricted to the kept vocabulary (pruned by global
frequency on a corpus, least frequent first), times ``exp(eta * noise)``,
renormalised (``eta`` is the drafter-quality knob; the noise of a (context,
token) is the same at every pruning level: common random numbers).

Three disjoint sets of contexts per seed: a *corpus* (token frequencies for
pruning, and the target laws ``affinity_kernel`` turns into a kernel), a
*tuning* set (picks the kernel's temperature ``tau`` from a small grid, per
pruning level) and the *evaluation* set (every reported number).  Reported
per pruning level, as means over evaluation contexts: TLI, RDK with the
kernel's default ``tau``, RDK with the validated ``tau`` (dense), its
top-K ``SparseKernel`` with the bound ``Σ_i q'_i ε_i``, and the cap ``p(I)``.
Baselines and references: RDK with a *back-off* kernel that carries no
affinity (keep ``1 − λ``, spread ``λ`` over the pruned tokens by corpus
frequency; ``λ`` validated like ``tau``), and, from the generator's family labels
(which no real system has), a family kernel and the mass a within-family
redistribution can reach at all.

Writes ``DIR/rdk_pruning.csv``, ``DIR/summary.md`` and ``DIR/rdk_pruning.png``.
"""

from __future__ import annotations

import argparse
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_csv, write_experiment_numbers
from simspec.sampling import rdk, tli
from simspec.sampling.vocab import Vocabulary, VocabularyMap

PRUNE = (0.0, 0.25, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
PRUNE_QUICK = (0.0, 0.5, 0.75, 0.9, 0.95)
TAU_GRID = (0.02, 0.05, 0.1, 0.2, 0.4)
LAMBDA_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
COLUMNS = ("seed", "prune", "n_target", "n_drafter", "p_I", "family_reachable", "tli", "rdk_default_tau",
           "rdk_dense", "rdk_sparse", "sparse_bound", "rdk_family_kernel", "rdk_backoff", "backoff_lambda", "tau",
           "sparse_k", "r_mass_pruned_default", "r_mass_pruned", "tli_gt_cap", "sparse_bound_violations", "eval_contexts")


# -- the synthetic target ----------------------------------------------------------------------------


def _variants(word: str) -> list[str]:
    """A family's members, head first: how tokenizers split one word by case, leading space and plural."""
    cap, up = word.capitalize(), word.upper()
    return [" " + word, word, " " + cap, cap, " " + up, up, " " + word + "s", word + "s"]


@dataclass(frozen=True)
class FamilyTarget:
    """Next-token laws over a vocabulary of token families.

    ``p_c(t) = softmax_f(a_f + sigma · z_{c,f})[family(t)] · softmax_{m ∈ family}(b_m + nu · u_{c,t})[t]``,
    ``a_f = −s log(f + 1)`` (Zipf over families), ``b_m = −beta log(m + 1)`` (Zipf over members).
    """

    vocab: Vocabulary
    family: np.ndarray  # (|T|,) family of each token
    member: np.ndarray  # (|T|,) rank inside the family, 0 = head
    family_bias: np.ndarray  # (F,)
    sigma: float
    beta: float
    nu: float

    @classmethod
    def build(cls, rng: np.random.Generator, n_families: int, max_members: int = 8, zipf: float = 1.0,
              sigma: float = 1.0, beta: float = 1.0, nu: float = 0.3) -> "FamilyTarget":
        tokens, family, member, seen = [], [], [], set()
        letters = np.array(list(string.ascii_lowercase))
        while len(set(family)) < n_families:
            word = "".join(rng.choice(letters, size=int(rng.integers(3, 8))))
            size = int(rng.integers(1, max_members + 1))
            members = _variants(word)[:size]
            if seen.intersection(members):
                continue
            seen.update(members)
            f = len(set(family))
            tokens += members
            family += [f] * size
            member += list(range(size))
        bias = -zipf * np.log(np.arange(n_families) + 1.0)
        return cls(Vocabulary(tuple(tokens)), np.array(family), np.array(member), bias, sigma, beta, nu)

    def laws(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` contexts' next-token laws, ``(n, |T|)``."""
        F = self.family_bias.size
        fl = self.family_bias + self.sigma * rng.standard_normal((n, F))
        pf = np.exp(fl - fl.max(axis=1, keepdims=True))
        pf /= pf.sum(axis=1, keepdims=True)
        w = np.exp(-self.beta * np.log(self.member + 1.0) + self.nu * rng.standard_normal((n, self.family.size)))
        tot = np.zeros((n, F))
        for j in range(n):  # per-family sums of the member weights
            tot[j] = np.bincount(self.family, weights=w[j], minlength=F)
        p = pf[:, self.family] * w / tot[:, self.family]
        return p / p.sum(axis=1, keepdims=True)


def family_kernel(target: FamilyTarget, keep: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """A reference kernel built from the generator's family labels (no real system has them).

    Kept token ``i`` keeps its corpus frequency and takes, from each pruned
    member ``j`` of its family, ``freq_j`` times ``i``'s share of the family's
    kept frequency; rows renormalised.  Rows as ``|D| × |T|`` (``D`` = ``keep``).
    """
    kept = np.zeros(freq.size, dtype=bool)
    kept[keep] = True
    M = np.zeros((keep.size, freq.size))
    for row, i in enumerate(keep):
        fam = target.family == target.family[i]
        pruned = np.flatnonzero(fam & ~kept)
        M[row, i] = freq[i]
        M[row, pruned] = freq[pruned] * freq[i] / freq[fam & kept].sum()
    return M / M.sum(axis=1, keepdims=True)


def drafter_laws(p: np.ndarray, keep: np.ndarray, noise: np.ndarray, eta: float) -> np.ndarray:
    """The target's law on the kept tokens times ``exp(eta · noise)``, renormalised: ``(n, |D|)``."""
    q = p[:, keep] * np.exp(eta * noise[:, keep])
    return q / q.sum(axis=1, keepdims=True)


def kept_tokens(freq: np.ndarray, prune: float) -> np.ndarray:
    """Indices of the most frequent ``1 − prune`` fraction of the vocabulary (at least one), in vocabulary order."""
    n_keep = max(1, int(round((1.0 - prune) * freq.size)))
    return np.sort(np.argsort(-freq, kind="stable")[:n_keep])


# -- one seed ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    n_families: int
    corpus: int
    tuning: int
    evaluation: int
    eta: float
    sparse_k: int
    zipf: float
    sigma: float
    beta: float
    nu: float
    prune: tuple


def _rdk_eval(p, q, vm, M) -> tuple[np.ndarray, np.ndarray]:
    """Per-context RDK acceptance and the proposal's mass on pruned (out-of-drafter) target tokens."""
    r = rdk.rdk_proposal(q, vm, M)
    outside = vm.target_to_drafter < 0
    return np.minimum(p, r).sum(axis=1), r[:, outside].sum(axis=1)


def run_seed(seed: int, cfg: Config) -> list[dict]:
    ss = np.random.SeedSequence([seed, 20506032])
    g_model, g_corpus, g_tune, g_eval, g_noise_t, g_noise_e = (np.random.default_rng(s) for s in ss.spawn(6))
    target = FamilyTarget.build(g_model, cfg.n_families, zipf=cfg.zipf, sigma=cfg.sigma, beta=cfg.beta, nu=cfg.nu)
    T = target.vocab
    corpus = target.laws(g_corpus, cfg.corpus)
    p_tune = target.laws(g_tune, cfg.tuning)
    p_eval = target.laws(g_eval, cfg.evaluation)
    noise_tune = g_noise_t.standard_normal(p_tune.shape)
    noise_eval = g_noise_e.standard_normal(p_eval.shape)
    freq = corpus.mean(axis=0)
    rows = []
    for prune in cfg.prune:
        keep = kept_tokens(freq, prune)
        vm = VocabularyMap(T, T.subset(keep))
        q_tune = drafter_laws(p_tune, keep, noise_tune, cfg.eta)
        q_eval = drafter_laws(p_eval, keep, noise_eval, cfg.eta)
        p_I = p_eval[:, keep].sum(axis=1)
        a_tli = tli.tli_acceptance(p_eval, q_eval, vm)
        # the kernel's temperature, validated on the tuning contexts (never on the evaluation ones)
        best = None
        for tau in TAU_GRID:
            M = rdk.affinity_kernel(corpus, vm, tau=tau)
            score = float(rdk.rdk_acceptance(p_tune, q_tune, vm, M).mean())
            if best is None or score > best[0] + 1e-12:
                best = (score, tau, M)
        _, tau, M = best
        a_def, mass_def = _rdk_eval(p_eval, q_eval, vm, rdk.affinity_kernel(corpus, vm))
        a_dense, mass = _rdk_eval(p_eval, q_eval, vm, M)
        S = rdk.SparseKernel.from_dense(M, cfg.sparse_k)
        a_sparse = rdk.rdk_acceptance(p_eval, q_eval, vm, S)
        a_family = rdk.rdk_acceptance(p_eval, q_eval, vm, family_kernel(target, keep, freq))
        lam = max(LAMBDA_GRID, key=lambda x: float(rdk.rdk_acceptance(p_tune, q_tune, vm,
                                                                       rdk.backoff_kernel(vm, freq, x)).mean()))
        a_backoff = rdk.rdk_acceptance(p_eval, q_eval, vm, rdk.backoff_kernel(vm, freq, lam))
        reachable = np.isin(target.family, target.family[keep])  # tokens whose family kept a member
        q_prime = q_eval / q_eval.sum(axis=1, keepdims=True)  # D ⊂ T: TLI's q' is q itself
        bound = np.array([S.bound(row) for row in q_prime])
        rows.append({
            "seed": seed, "prune": prune, "n_target": len(T), "n_drafter": keep.size,
            "p_I": float(p_I.mean()), "family_reachable": float(p_eval[:, reachable].sum(axis=1).mean()),
            "rdk_family_kernel": float(a_family.mean()), "rdk_backoff": float(a_backoff.mean()),
            "backoff_lambda": lam if keep.size < len(T) else 0.0, "tli": float(a_tli.mean()),
            "rdk_default_tau": float(a_def.mean()),
            "rdk_dense": float(a_dense.mean()), "rdk_sparse": float(a_sparse.mean()),
            "sparse_bound": float(bound.mean()), "tau": tau, "sparse_k": cfg.sparse_k,
            "r_mass_pruned_default": float(mass_def.mean()), "r_mass_pruned": float(mass.mean()),
            "tli_gt_cap": int((a_tli > p_I + 1e-12).sum()),
            "sparse_bound_violations": int((np.abs(a_dense - a_sparse) > bound + 1e-12).sum()),
            "eval_contexts": cfg.evaluation,
        })
    return rows


# -- outputs -----------------------------------------------------------------------------------------


def _mean_sd(rows: list[dict], key: str) -> tuple[float, float]:
    x = np.array([r[key] for r in rows], dtype=float)
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def _by_prune(rows: list[dict]) -> dict[float, list[dict]]:
    out: dict[float, list[dict]] = {}
    for r in rows:
        out.setdefault(r["prune"], []).append(r)
    return out


def summary(rows: list[dict], cfg: Config, seeds: list[int], header: str, elapsed: float) -> str:
    by = _by_prune(rows)
    n_seeds = len(seeds)
    fmt = (lambda m, s: f"{m:.3f} ± {s:.3f}") if n_seeds > 1 else (lambda m, s: f"{m:.3f}")
    L = [
        "# TLI vs RDK as the drafter vocabulary is pruned",
        "",
        header,
        "",
        f"Target: {rows[0]['n_target']} tokens in {cfg.n_families} families (seed 0; sizes vary by seed), "
        f"Zipf exponent {cfg.zipf:g} over families, family noise sigma = {cfg.sigma:g}, within-family Zipf "
        f"beta = {cfg.beta:g}, share noise nu = {cfg.nu:g}. Drafter noise eta = {cfg.eta:g}. Contexts per seed: "
        f"{cfg.corpus} corpus (pruning frequencies, kernel), {cfg.tuning} tuning (tau), {cfg.evaluation} "
        f"evaluation. {n_seeds} seed(s): " + ", ".join(map(str, seeds)) + "."
        + (" Cells: mean ± sd over seeds of the mean over evaluation contexts." if n_seeds > 1 else ""),
        "",
        "RDK kernels: `affinity_kernel` (correlation prior, OOV-only) at its default tau, and at the tau picked "
        f"per pruning level from {{{', '.join(f'{t:g}' for t in TAU_GRID)}}} on the tuning contexts; sparse = its "
        f"top-{cfg.sparse_k} `SparseKernel`, bound = mean of `Σ_i q'_i ε_i`. "
        "r(pruned) = the RDK proposal's mass on tokens the drafter lacks (TLI's is 0).",
        "",
        "Back-off kernel: no affinity at all; each kept token keeps 1 - lambda of its mass and spreads lambda over "
        "the pruned tokens in proportion to their corpus frequencies (lambda picked per level from "
        f"{{{', '.join(f'{x:g}' for x in LAMBDA_GRID)}}} on the tuning contexts; lambda = 0 is TLI).",
        "",
        "Two references built from the generator's family labels, which no real system has: family kernel = RDK "
        "with a kernel that sends each kept token's mass to itself and its family's pruned members in proportion "
        "to their corpus frequencies; reachable = the target's mass on families that kept at least one member "
        "(what a within-family redistribution can reach at all).",
        "",
        "| pruned | drafter tokens | cap p(I) | TLI | RDK, default tau | RDK dense, validated tau | "
        "RDK sparse | sparse bound | tau picked | r(pruned) | RDK - TLI | RDK, back-off kernel | lambda picked | "
        "family kernel | reachable |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for prune, rs in sorted(by.items()):
        taus = sorted({r["tau"] for r in rs})
        gain = np.array([r["rdk_dense"] - r["tli"] for r in rs])
        L.append(
            f"| {100 * prune:.0f}% | {int(np.mean([r['n_drafter'] for r in rs]))} | {fmt(*_mean_sd(rs, 'p_I'))} | "
            f"{fmt(*_mean_sd(rs, 'tli'))} | {fmt(*_mean_sd(rs, 'rdk_default_tau'))} | "
            f"{fmt(*_mean_sd(rs, 'rdk_dense'))} | {fmt(*_mean_sd(rs, 'rdk_sparse'))} | "
            f"{_mean_sd(rs, 'sparse_bound')[0]:.4f} | {', '.join(f'{t:g}' for t in taus)} | "
            f"{_mean_sd(rs, 'r_mass_pruned')[0]:.3f} | {gain.mean():+.3f} | {fmt(*_mean_sd(rs, 'rdk_backoff'))} | "
            f"{', '.join(f'{x:g}' for x in sorted({r['backoff_lambda'] for r in rs}))} | "
            f"{fmt(*_mean_sd(rs, 'rdk_family_kernel'))} | "
            f"{_mean_sd(rs, 'family_reachable')[0]:.3f} |"
        )
    high = [r for r in rows if r["prune"] >= 0.75]
    over_cap = sorted({r["prune"] for r in rows if r["rdk_dense"] > r["p_I"]})
    over_cap_b = sorted({r["prune"] for r in rows if r["rdk_backoff"] > r["p_I"]})
    tli_mono = all(
        all(b["tli"] <= a["tli"] + 1e-12 for a, b in zip(rs, rs[1:]))
        for rs in ([r for r in rows if r["seed"] == s] for s in seeds)
    )
    L += [
        "",
        "## Checks",
        "",
        f"* TLI above its cap p(I) in any evaluation context: {sum(r['tli_gt_cap'] for r in rows)} of "
        f"{sum(r['eval_contexts'] for r in rows)} (context, level, seed) cases.",
        f"* Sparse kernel farther from the dense one than its bound: {sum(r['sparse_bound_violations'] for r in rows)} "
        f"of {sum(r['eval_contexts'] for r in rows)} cases.",
        f"* TLI non-increasing in pruning, every seed: {'yes' if tli_mono else 'NO'}.",
        f"* RDK (validated tau) minus TLI at >= 75% pruning: min {min(r['rdk_dense'] - r['tli'] for r in high):+.4f}, "
        f"max {max(r['rdk_dense'] - r['tli'] for r in high):+.4f}.",
        "* RDK (validated tau) above TLI's cap p(I), mean over contexts: at pruning "
        + (", ".join(f"{100 * x:.0f}%" for x in over_cap) if over_cap else "none") + ".",
        "* RDK with the back-off kernel above TLI's cap p(I): at pruning "
        + (", ".join(f"{100 * x:.0f}%" for x in over_cap_b) if over_cap_b else "none") + ".",
        "",
        f"Run time: {elapsed:.1f} s.",
    ]
    return "\n".join(L) + "\n"


def figure(rows: list[dict]):
    """Acceptance against pruning (top) and where RDK's gain comes from (bottom), in simspec's figure style:
    each verifier in its colour (``simspec.plots.VERIFIER_COLOURS``; RDK's kernels in shades of RDK's), every
    axis with its unit, 7 inches wide."""
    from matplotlib.figure import Figure

    from simspec.plots import VERIFIER_COLOURS, shade as _mix

    def shade(level: float) -> str:  # RDK's colour, lighter for the reference kernels
        return _mix(VERIFIER_COLOURS["rdk"], level)

    by = _by_prune(rows)
    x = np.array(sorted(by)) * 100
    mean = lambda k: np.array([_mean_sd(by[p], k)[0] for p in sorted(by)])
    fig = Figure(figsize=(7.0, 7.4), layout="constrained")
    ax, ax2 = fig.subplots(2, 1, sharex=True)
    ax.plot(x, mean("p_I"), "k--", label="cap p(I) (target mass on kept tokens)")
    ax.plot(x, mean("tli"), "o-", color=VERIFIER_COLOURS["tli"], label="TLI")
    ax.plot(x, mean("rdk_default_tau"), "s:", color=shade(0.5), ms=4, label="RDK, default tau")
    ax.plot(x, mean("rdk_dense"), "o-", color=shade(0.0), label="RDK dense, validated tau")
    ax.plot(x, mean("rdk_backoff"), "D-", color=shade(0.3), ms=4, label="RDK, back-off kernel (no affinity)")
    ax.plot(x, mean("rdk_family_kernel"), "d-.", color=shade(0.6), ms=4, label="RDK, family kernel (reference)")
    ax.errorbar(x, mean("rdk_sparse"), yerr=mean("sparse_bound"), fmt="x", color=shade(0.15), capsize=3,
                label=f"RDK sparse top-{rows[0]['sparse_k']} (bar: bound)")
    ax.set_ylabel("acceptance (probability)", fontsize=8)
    ax.set_ylim(max(0.0, float(min(mean("tli").min(), mean("p_I").min())) - 0.1), 1.0)
    ax.set_title("acceptance vs pruning (mean over evaluation contexts and seeds)", fontsize=9)
    ax2.plot(x, 1 - mean("p_I"), "k--", label="target mass on pruned tokens 1 - p(I)")
    ax2.plot(x, 1 - mean("family_reachable"), "k:", label="... in families with no kept member")
    ax2.plot(x, mean("r_mass_pruned"), "o-", color=shade(0.0), label="affinity RDK proposal's mass on pruned tokens")
    ax2.plot(x, mean("rdk_dense") - mean("tli"), "^-", color=shade(0.0), mfc="none", label="RDK (affinity) - TLI")
    ax2.plot(x, mean("rdk_backoff") - mean("tli"), "D-", color=shade(0.3), mfc="none", label="RDK (back-off) - TLI")
    ax2.set_xlabel("drafter vocabulary pruned (%)", fontsize=8)
    ax2.set_ylabel("mass, or acceptance gained (probability)", fontsize=8)
    ax2.set_title("where RDK's gain comes from", fontsize=9)
    for a, where in ((ax, "lower left"), (ax2, "upper left")):
        a.grid(alpha=0.3)
        a.tick_params(labelsize=7)
        a.legend(fontsize=7, loc=where)
    fig.suptitle(f"Synthetic token families, {rows[0]['n_target']} target tokens (seed {rows[0]['seed']}), "
                 f"{len({r['seed'] for r in rows})} seed(s)", fontsize=9)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"), help="output folder")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="80 families, fewer contexts and levels, one seed (tests)")
    ap.add_argument("--families", type=int, default=None, help="token families (default 300, about 1350 tokens)")
    ap.add_argument("--eta", type=float, default=0.5, help="drafter noise: log-normal sd on its probabilities")
    ap.add_argument("--sparse-k", type=int, default=8, help="entries kept per kernel row by the sparse kernel")
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent over families")
    ap.add_argument("--sigma", type=float, default=1.0, help="sd of the per-context family logits")
    ap.add_argument("--beta", type=float, default=1.0, help="Zipf exponent over the members of a family")
    ap.add_argument("--nu", type=float, default=0.3, help="sd of the per-context within-family share noise")
    ap.add_argument("--no-png", action="store_true", help="skip the figure")
    add_reference_flag(ap)
    args = ap.parse_args(argv)
    check_reference_flag(args)
    q = args.quick
    cfg = Config(
        n_families=args.families or (80 if q else 300), corpus=600 if q else 2000, tuning=150 if q else 400,
        evaluation=300 if q else 1000, eta=args.eta, sparse_k=args.sparse_k, zipf=args.zipf, sigma=args.sigma,
        beta=args.beta, nu=args.nu, prune=PRUNE_QUICK if q else PRUNE,
    )
    seeds = list(range(args.seeds or (1 if q else 3)))
    t0 = time.perf_counter()
    rows = [r for s in seeds for r in run_seed(s, cfg)]
    elapsed = time.perf_counter() - t0
    given = list(sys.argv[1:] if argv is None else argv)
    shown = " ".join(a for j, a in enumerate(given) if not a.startswith("--out") and not (j and given[j - 1] == "--out"))
    header = f"Generated by `python experiments/rdk_pruning/run.py{' ' + shown if shown else ''}`."
    out = Path(args.out)
    table = [[r[c] for c in COLUMNS] for r in rows]
    write_csv(out / "rdk_pruning.csv", COLUMNS, table)
    numbers = dict(experiment="rdk_pruning", mode="quick" if q else "full", seeds=len(seeds))
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, table, reference=args.reference, **numbers)
    text = summary(rows, cfg, seeds, header, elapsed)
    atomic_write_text(out / "summary.md", text)
    if not args.no_png:
        from simspec.plots import save_figure

        save_figure(figure(rows), out / "rdk_pruning.png")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
