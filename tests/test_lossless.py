"""Losslessness of every verifier in ``simspec.sampling`` (``docs/model.md`` §8).

Five layers, each against a reference written here, not against the module's own formulas:

1. **Exact, one step.**  Hypothesis draws vocabularies (target ``T``, drafter ``D``, their
   overlap, drafter order permuted), ``p``, ``q`` (with exact zeros) and row-stochastic affinity
   matrices ``M``.  For standard, greedy, union, TLI, RDK (dense ``M`` and :class:`SparseKernel`)
   the proposal is rebuilt here from the token *strings*, the law of the emitted token is
   enumerated from the mechanism (draft ``x ~ r``, accept with ``min(1, p/r)``, else residual
   ``norm((p − r)_+)`` computed here) and compared with ``p`` to 1e-12 in float64; the module's
   ``*_output_law`` / ``*_proposal`` are checked against the same references.  Union: mass
   outside ``T`` is exactly 0.  SLEM/SLRS: small :class:`TokenLM` pairs (2–3 letter alphabets, a
   few words); ``ψ`` from ``first_token_law`` is also recomputed by brute-force enumeration of
   drafter token sequences until the target's first token is decided.
2. **Sequence level.**  An exact enumerator of multi-draft rounds (draft from the proposal
   autoregressively, verify left to right, residual on the first rejection, bonus from ``p`` when
   all are accepted) over lazily generated random tables ``p(·|prefix)``, ``q(·|prefix)``
   (keyed by prefix tuples, seeded), for static ``k``, a dynamic stop rule (stop drafting when
   the drafter's top-1 probability is below a threshold), simspec's own stop rules
   (``ConfidenceLookahead``, ``DiscoLookahead``, ``SpecDecPPLookahead``: their controllers decide
   after each draft), and transformers' heuristic schedule across rounds (``HeuristicLookahead``'s
   own controller).  The law of the first ``H`` emitted
   tokens must equal ``∏ p(s_i | s_<i)`` to 1e-12.  Proposals: standard, union, TLI, RDK dense and
   sparse (built per prefix with the module's functions), SLRS/SLEM with ``ψ`` per prefix from
   TokenLM pairs (at every position the first target token of a fresh draft, as
   ``slrs.sample`` models it), greedy (law = the target's argmax chain).
   Drafts are enumerated *interleaved* with verification: drafts after the first rejection are
   discarded by the mechanism, so marginalising them out first gives the same law (also for
   the dynamic rule, whose decision to draft position ``i+1`` depends on drafts ``≤ i`` only).
3. **Statistical.**  The vectorised samplers (``std.sample``, ``tli_sample``, ``union_sample``,
   ``rdk_sample`` dense and sparse, ``slrs.sample``, ``slem.sample``, plus SLRS fed with drafts
   produced by actually running the drafter and re-tokenizing its text) against ``p`` with
   ``scipy.stats.chisquare`` at ``ALPHA = 1e-3`` (false-alarm rate of each test for a random
   seed; seeds are fixed, so the suite is deterministic).  Sample size ``N_MC = 100_000``.  The
   same test must reject deliberately lossy verifiers (accept every draft; residual drawn from
   ``p`` instead of ``norm((p − r)_+)``; SLEM emitting the draft).  Power: under a lossy law
   ``ℓ`` the statistic is approximately noncentral chi-square with ``λ = N Σ (ℓ − p)² / p``;
   each lossy test computes that power and asserts it is ≥ 0.999 before asserting rejection,
   so the configuration cannot silently lose power.  With ``N = 1e5`` and 5–6 degrees of
   freedom (critical value ≈ 21–22), power 0.999 needs only ``λ ≈ 55``, i.e. a chi-square
   distance ``Σ (ℓ − p)²/p ≥ 5.5e-4`` (a total-variation error of order 0.01); the lossy
   variants here are at ``λ`` = 2.7e3 to 3.2e5, and the lossless samplers must also pass
   with the same ``N`` — so biases of order 1% in total variation are caught.
4. **Acceptance.**  Empirical acceptance rates vs the closed forms within 5 standard errors;
   orderings (union ≤ TLI ≤ p(I), SLEM ≤ SLRS), RDK(identity) = TLI, and the SparseKernel bound
   ``|α − α̃| ≤ Σ q'_i ε_i`` — hypothesis-driven.
5. **Bad input.**  Named errors with messages that say what is wrong.

Defects these tests found are kept as regression tests at the end.
"""

from __future__ import annotations

import copy
import itertools
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from scipy import stats

from simspec.errors import DistributionError, VocabularyError
from simspec.learned_lookahead import AcceptanceClassifier, DiscoLookahead, SpecDecPPLookahead
from simspec.lookahead import ConfidenceLookahead, HeuristicLookahead, RoundView, StaticLookahead
from simspec.sampling import core, rdk, slem, slrs, std, tli
from simspec.sampling.models import CharLanguage, MixedLanguage, TokenLM, vocabulary_pair
from simspec.sampling.retokenize import first_token_law
from simspec.sampling.vocab import GreedyTokenizer, Vocabulary, VocabularyMap, alphabet_vocabulary

EXACT = 1e-12  # float64 tolerance of every exact comparison
ALPHA = 1e-3  # false-alarm rate of each chi-square goodness-of-fit test
N_MC = 100_000  # Monte Carlo draws per statistical test
MIN_POWER = 0.999  # required power of the chi-square test against each lossy variant
SE_TOL = 5.0  # acceptance rates: within 5 standard errors


# ----------------------------------------------------------------------------------------------
# references written here
# ----------------------------------------------------------------------------------------------


def ref_residual(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    excess = np.maximum(p - r, 0.0)
    mass = excess.sum()
    return excess / mass if mass > 0 else p  # mass 0: rejection has probability 0


def ref_step_law(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Law of the emitted token, enumerated over the proposal ``x`` and the accept coin."""
    res = ref_residual(p, r)
    law = np.zeros_like(p)
    for x in np.flatnonzero(r):
        a = (1.0 if p[x] >= r[x] else p[x] / r[x]) if x < p.size else 0.0  # min(1, p/r), no overflow
        if x < p.size:
            law[x] += r[x] * a
        law += r[x] * (1.0 - a) * res
    return law


def ref_union(p, q, vm: VocabularyMap):
    tokens = list(vm.target.tokens) + [s for s in vm.drafter.tokens if s not in vm.target.index]
    pd = dict(zip(vm.target.tokens, p))
    qd = dict(zip(vm.drafter.tokens, q))
    return (np.array([pd.get(s, 0.0) for s in tokens]), np.array([qd.get(s, 0.0) for s in tokens]), tokens)


def ref_tli(q, vm: VocabularyMap) -> np.ndarray:
    qd = dict(zip(vm.drafter.tokens, q))
    q_i = sum(qd[s] for s in vm.target.tokens if s in qd)
    return np.array([qd.get(s, 0.0) / q_i for s in vm.target.tokens])


def ref_rdk(q, vm: VocabularyMap, M: np.ndarray) -> np.ndarray:
    inside = np.array([s in vm.target.index for s in vm.drafter.tokens])
    qp = np.where(inside, q, 0.0)
    qp = qp / qp.sum()
    return sum(qp[j] * M[j] for j in range(len(qp)))


def ref_sparse_dense(M: np.ndarray, sk: rdk.SparseKernel) -> np.ndarray:
    """The sparse kernel as a dense matrix (kept entries of M, renormalised)."""
    out = np.zeros_like(M)
    for i in range(M.shape[0]):
        out[i, sk.index[i]] = M[i, sk.index[i]]
        out[i] /= out[i].sum()
    return out


def ref_psi(drafter: TokenLM, target: Vocabulary, context: str) -> np.ndarray:
    """``ψ`` by brute force: extend drafter token sequences until the text is as long as the
    target's longest token (then greedy longest match has decided), without early stopping."""
    tok = GreedyTokenizer(target)
    psi = np.zeros(len(target))
    stack = [("", 1.0)]
    while stack:
        w, mass = stack.pop()
        if len(w) >= target.max_len:
            psi[tok.first_token(w)] += mass
            continue
        q = drafter.next_token_probs(context + w)
        for j in np.flatnonzero(q):
            stack.append((w + drafter.vocab.tokens[j], mass * q[j]))
    return psi


def assert_law(law, p, tol=EXACT):
    law, p = np.asarray(law), np.asarray(p)
    assert law.shape == p.shape
    assert np.max(np.abs(law - p)) <= tol, f"law {law} != p {p} (max err {np.max(np.abs(law - p)):.3g})"


# ----------------------------------------------------------------------------------------------
# strategies
# ----------------------------------------------------------------------------------------------

_weight = st.one_of(st.just(0.0), st.floats(1e-3, 1.0, allow_nan=False, allow_infinity=False))


@st.composite
def dists(draw, n: int, zeros: bool = True) -> np.ndarray:
    w = np.array(draw(st.lists(_weight if zeros else st.floats(1e-3, 1.0), min_size=n, max_size=n)))
    if w.sum() == 0:
        w[draw(st.integers(0, n - 1))] = 1.0
    return w / w.sum()


@st.composite
def vocab_maps(draw, min_shared: int = 1, max_target: int = 5) -> VocabularyMap:
    """``T = t0..t{n-1}``; ``D`` = some of ``T`` (pruned) plus drafter-only tokens, permuted."""
    n_t = draw(st.integers(max(1, min_shared), max_target))
    target = tuple(f"t{i}" for i in range(n_t))
    shared = draw(st.lists(st.sampled_from(target), min_size=min_shared, max_size=n_t, unique=True))
    own = tuple(f"d{i}" for i in range(draw(st.integers(0, 3))))
    drafter = draw(st.permutations(list(shared) + list(own)))
    assume(drafter)
    return VocabularyMap(Vocabulary(target), Vocabulary(tuple(drafter)))


@st.composite
def kernels(draw, vm: VocabularyMap) -> np.ndarray:
    """A row-stochastic ``|D| × |T|`` affinity matrix: random rows, identity-like rows, or the
    covariance prior of :func:`rdk.affinity_kernel`."""
    kind = draw(st.sampled_from(["random", "near_identity", "affinity"]))
    n_d, n_t = len(vm.drafter), len(vm.target)
    if kind == "affinity":
        seed = draw(st.integers(0, 2**32 - 1))
        ctx = np.random.default_rng(seed).dirichlet(np.full(n_t, 0.5), size=draw(st.integers(2, 8)))
        return rdk.affinity_kernel(ctx, vm, tau=draw(st.sampled_from([None, 0.05, 1.0])))
    M = np.stack([draw(dists(n_t)) for _ in range(n_d)])
    if kind == "near_identity":
        lam = draw(st.floats(0.0, 1.0))
        M = lam * rdk.identity_kernel(vm) + (1 - lam) * M
    return M


@st.composite
def hetero_problems(draw, min_shared: int = 1):
    vm = draw(vocab_maps(min_shared=min_shared))
    p = draw(dists(len(vm.target)))
    q = draw(dists(len(vm.drafter)))
    inside = np.flatnonzero(vm.drafter_to_target >= 0)
    if inside.size and q[inside].sum() == 0:  # TLI/RDK need q(I) > 0 (a named error otherwise)
        q[inside[0]] += 1.0
        q = q / q.sum()
    return vm, p, q


# token-level models: tiny text processes read through two vocabularies


@st.composite
def token_lm_pairs(draw):
    alphabet = draw(st.sampled_from(["ab", "abc"]))
    n_words = draw(st.integers(1, 3 if alphabet == "ab" else 2))
    overlap = draw(st.sampled_from([0.0, 0.5, 1.0]))
    vseed = draw(st.integers(0, 10_000))
    T, D = vocabulary_pair(alphabet, n_words, overlap, seed=vseed, lengths=(2, 3))
    order = draw(st.integers(0, 2))
    base = CharLanguage(alphabet, order=order, seed=draw(st.integers(0, 10_000)))
    other = CharLanguage(alphabet, order=order, seed=draw(st.integers(0, 10_000)))
    closeness = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    temperature = draw(st.sampled_from([1.0, 0.7, 1.5]))
    target = TokenLM(base, T, temperature=temperature)
    drafter = TokenLM(MixedLanguage(base, other, closeness), D)
    context = draw(st.text(alphabet=alphabet, max_size=3))
    return target, drafter, context


# ----------------------------------------------------------------------------------------------
# 1. exact one-step laws
# ----------------------------------------------------------------------------------------------


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(dists(n), dists(n))))
def test_exact_standard(pq):
    p, q = pq
    assert_law(ref_step_law(p, q), p)
    assert_law(std.output_law(p, q), p)
    assert_law(core.output_law(p, q), p)
    assert_law(core.residual(p, q) if np.maximum(p - q, 0).sum() > 0 else p, ref_residual(p, q))


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(dists(n), dists(n))), st.integers(1, 50))
def test_exact_greedy(pq, n):
    """Greedy: the emitted token is the target's argmax whatever the draft (the law at temperature 0)."""
    p, q = pq
    top = int(np.argmax(p))
    law = np.zeros_like(p)
    for x in np.flatnonzero(q):  # draft x: accepted iff x = argmax p, else argmax p emitted
        law[x if x == top else top] += q[x]
    onehot = np.eye(p.size)[top]
    assert_law(law, onehot)
    assert int(std.greedy_output(p)) == top
    s = std.greedy_sample(np.random.default_rng(n), p, q, n)
    assert np.all(s.emitted == top) and np.array_equal(s.accepted, s.proposal == top)
    assert abs(float(std.greedy_acceptance(p, q)) - q[top]) <= EXACT


@given(hetero_problems(min_shared=0))
def test_exact_union(problem):
    vm, p, q = problem
    p_u, q_u, tokens = ref_union(p, q, vm)
    mp, mq = tli.union_space(p, q, vm)
    # the module's union space is the same (token by token, target tokens first)
    assert np.array_equal(mp, p_u) and np.array_equal(mq, q_u)
    law = ref_step_law(p_u, q_u)
    assert np.all(law[len(vm.target):] == 0.0), "mass outside T must be exactly 0"
    assert_law(law[: len(vm.target)], p)
    mod = tli.union_output_law(p, q, vm)
    assert np.all(mod[len(vm.target):] == 0.0), "mass outside T must be exactly 0"
    assert_law(mod[: len(vm.target)], p)


@given(hetero_problems())
def test_exact_tli(problem):
    vm, p, q = problem
    r = ref_tli(q, vm)
    assert_law(tli.tli_proposal(q, vm), r)
    assert_law(ref_step_law(p, r), p)
    assert_law(tli.tli_output_law(p, q, vm), p)


@given(hetero_problems().flatmap(lambda pr: st.tuples(st.just(pr), kernels(pr[0]))))
def test_exact_rdk_dense(problem_m):
    (vm, p, q), M = problem_m
    assert np.allclose(M.sum(axis=1), 1.0) and np.all(M >= 0)
    r = ref_rdk(q, vm, M)
    assert_law(rdk.rdk_proposal(q, vm, M), r)
    assert_law(ref_step_law(p, r), p)
    assert_law(rdk.rdk_output_law(p, q, vm, M), p)
    # the sampler's two-stage draw i ~ q', x ~ M[i] has law r
    qp = np.where(vm.drafter_to_target >= 0, q, 0.0)
    qp /= qp.sum()
    two_stage = np.zeros(len(vm.target))
    for i in np.flatnonzero(qp):
        two_stage += qp[i] * M[i]
    assert_law(two_stage, r)


@given(hetero_problems().flatmap(lambda pr: st.tuples(st.just(pr), kernels(pr[0]), st.integers(1, 5))))
def test_exact_rdk_sparse(problem_m_k):
    (vm, p, q), M, k = problem_m_k
    sk = rdk.SparseKernel.from_dense(M, k)
    Ms = ref_sparse_dense(M, sk)
    assert np.allclose(Ms.sum(axis=1), 1.0)
    r = ref_rdk(q, vm, Ms)
    assert_law(rdk.rdk_proposal(q, vm, sk), r)
    assert abs(r.sum() - 1.0) <= EXACT  # still a distribution, so still lossless
    assert_law(ref_step_law(p, r), p)
    assert_law(rdk.rdk_output_law(p, q, vm, sk), p)


@given(token_lm_pairs())
def test_exact_slrs_and_slem_on_token_lms(pair):
    target, drafter, context = pair
    p = target.next_token_probs(context)
    law = first_token_law(drafter, target.vocab, context)
    psi = law.psi
    # ψ from the module = ψ by brute-force enumeration of drafter token sequences
    brute = ref_psi(drafter, target.vocab, context)
    assert abs(brute.sum() - 1.0) <= 1e-9
    assert_law(psi, brute / brute.sum())
    assert law.enumeration_forwards >= 1 and 1.0 <= law.expected_path_forwards <= law.enumeration_forwards
    # SLRS: rejection sampling between p and ψ
    assert_law(ref_step_law(p, psi), p)
    assert_law(slrs.output_law(p, psi), p)
    # SLEM: draft t ~ ψ, target's own y ~ p independently; accepted iff t = y; y is emitted
    slem_law = np.zeros_like(p)
    for t in np.flatnonzero(psi):
        for y in np.flatnonzero(p):
            slem_law[y] += psi[t] * p[y]
    assert_law(slem_law, p)
    assert_law(slem.output_law(p, psi), p)


# ----------------------------------------------------------------------------------------------
# 2. sequence level: exact enumeration of multi-draft rounds
# ----------------------------------------------------------------------------------------------


class Tables:
    """Random next-token tables keyed by prefix tuples, generated lazily from a seed.

    Entries are zeroed at random (at least one kept) so that ``p = 0 < r`` and ``r = 0 < p``
    both occur; ``shared`` marks drafter entries that must keep mass (the intersection).
    """

    def __init__(self, seed: int, conc: float = 0.6, zero_prob: float = 0.25):
        self.seed, self.conc, self.zero_prob = seed, conc, zero_prob

    @lru_cache(maxsize=None)
    def dist(self, role: int, prefix: tuple, n: int, keep: tuple = ()) -> np.ndarray:
        rng = np.random.default_rng([self.seed, role, n, len(prefix), *prefix])
        w = rng.dirichlet(np.full(n, self.conc))
        w[rng.random(n) < self.zero_prob] = 0.0
        must = list(keep) if keep else list(range(n))
        if w[must].sum() == 0:
            w[must[int(rng.integers(len(must)))]] = 1.0
        return w / w.sum()


class Static:
    def __init__(self, k: int):
        self.k = int(StaticLookahead(k).start(1).propose(None)[0])

    def initial(self):
        return None

    def draft_more(self, state, prefix, i, proposal):
        return i < self.k

    def after(self, state, all_accepted, n_drafted):
        return None


class DynamicStop:
    """Draft while the drafter's top-1 probability at the current prefix is ≥ ``theta`` (≤ k_max)."""

    def __init__(self, k_max: int, theta: float):
        self.k_max, self.theta = k_max, theta

    def initial(self):
        return None

    def draft_more(self, state, prefix, i, proposal):
        return i < self.k_max and float(np.max(proposal(prefix))) >= self.theta

    def after(self, state, all_accepted, n_drafted):
        return None


class StopRule:
    """A simspec stop rule's own controller (confidence, DISCO, SpecDec++) decides after each draft.

    The round's signals so far are the drafter's top-1 probabilities at the prefixes it drafted
    from; the rule drafts draft ``i`` exactly when its proposal with those signals exceeds ``i``
    (a stop at ``j < i`` depends on signals ``≤ j`` only, so the unknown later ones are set to 1).
    """

    def __init__(self, policy):
        self.policy = policy

    def initial(self):
        return None

    def draft_more(self, state, prefix, i, proposal):
        start = len(prefix) - i
        sig = [float(np.max(proposal(prefix[:start + j]))) for j in range(i)] + [1.0] * (self.policy.k_max + 1)
        n = len(sig)
        view = RoundView(np.zeros(1, dtype=np.int64), np.array([n]), np.zeros(1, dtype=np.int64),
                         {"top1_prob": np.array([sig])}, np.zeros((1, n), dtype=np.int64))
        return int(self.policy.start(1).propose(view)[0]) > i

    def after(self, state, all_accepted, n_drafted):
        return None


def _stop_rule(kind: str, k_max: int, theta: float) -> StopRule:
    clf = AcceptanceClassifier(("top1_prob",), (6.0,), -3.0, (0.0,), (1.0,))  # q = sigmoid(6x - 3)
    if kind == "confidence":
        return StopRule(ConfidenceLookahead(theta, k_max))
    if kind == "disco":
        return StopRule(DiscoLookahead(clf, theta, k_max))
    return StopRule(SpecDecPPLookahead(clf, theta, k_max))


class Heuristic:
    """transformers' schedule across rounds, driven by simspec's own controller (state = k)."""

    def __init__(self, k0: int, k_max: int):
        self.policy = HeuristicLookahead(k0, k_max)

    def initial(self):
        return self.policy.start(1)

    @staticmethod
    def k(state):
        return int(state.propose(None)[0])

    def draft_more(self, state, prefix, i, proposal):
        return i < self.k(state)

    def after(self, state, all_accepted, n_drafted):
        nxt = copy.deepcopy(state)
        k = self.k(state)
        nxt.observe(np.array([k]), np.array([k if all_accepted else n_drafted - 1]))
        return nxt

    def key(self, state):
        return self.k(state)


def round_outcomes(prefix, state, target, proposal, policy, mode):
    """Exact law of one round from ``prefix``: list of (emitted block, probability, all accepted, drafted).

    ``mode``: ``"rs"`` — rejection sampling with ``core.residual``; ``"slem"`` — draft t, target's
    own y ~ p, accepted iff equal, y emitted; ``"greedy"`` — accepted iff x = argmax p, else argmax p.
    """
    out = []

    def go(s, block, prob, i):
        if not policy.draft_more(state, s, i, proposal):
            p = target(s)  # all drafts accepted (or none drafted): bonus token from p
            for y in np.flatnonzero(p):
                out.append((block + (int(y),), prob * p[y], True, i))
            return
        p, r = target(s), proposal(s)
        if mode == "slem":
            for t in np.flatnonzero(r):
                for y in np.flatnonzero(p):
                    if y == t:
                        go(s + (int(t),), block + (int(t),), prob * r[t] * p[y], i + 1)
                    else:
                        out.append((block + (int(y),), prob * r[t] * p[y], False, i + 1))
            return
        if mode == "greedy":
            top = int(std.greedy_output(p))
            for x in np.flatnonzero(r):
                if x == top:
                    go(s + (top,), block + (top,), prob * r[x], i + 1)
                else:
                    out.append((block + (top,), prob * r[x], False, i + 1))
            return
        res = core.residual(np.pad(p, (0, r.size - p.size)), r)  # union: r lives on T ∪ D
        for x in np.flatnonzero(r):
            a = (1.0 if p[x] >= r[x] else p[x] / r[x]) if x < p.size else 0.0  # min(1, p/r) without overflow
            if a > 0:
                go(s + (int(x),), block + (int(x),), prob * r[x] * a, i + 1)
            if a < 1:
                for y in np.flatnonzero(res):
                    assert y < p.size, "the residual put mass outside the target's vocabulary"
                    out.append((block + (int(y),), prob * r[x] * (1 - a) * res[y], False, i + 1))

    go(prefix, (), 1.0, 0)
    return out


def sequence_law(H, target, proposal, policy, mode="rs"):
    """Exact law of the first ``H`` emitted tokens (dict: H-tuple → probability)."""
    memo = {}

    def law(prefix, state):
        key = (prefix, policy.key(state) if hasattr(policy, "key") else None)
        if key in memo:
            return memo[key]
        out = {}
        for block, prob, all_acc, drafted in round_outcomes(prefix, state, target, proposal, policy, mode):
            full = prefix + block
            if len(full) >= H:
                tail = full[len(prefix):H]
                out[tail] = out.get(tail, 0.0) + prob
            else:
                for rest, pr in law(full, policy.after(state, all_acc, drafted)).items():
                    out[block + rest] = out.get(block + rest, 0.0) + prob * pr
        memo[key] = out
        return out

    return law((), policy.initial())


def assert_autoregressive(H, n_tokens, target, seq_law):
    assert abs(sum(seq_law.values()) - 1.0) <= EXACT
    assert all(len(s) == H and all(0 <= t < n_tokens for t in s) for s in seq_law)
    worst = 0.0
    for s in itertools.product(range(n_tokens), repeat=H):
        expected = 1.0
        for i in range(H):
            expected *= target(s[:i])[s[i]]
        worst = max(worst, abs(seq_law.get(s, 0.0) - expected))
    assert worst <= EXACT, f"sequence law differs from the target's autoregressive law by {worst:.3g}"


policies = st.one_of(
    st.integers(1, 4).map(Static),
    st.tuples(st.integers(1, 4), st.floats(0.0, 1.0)).map(lambda a: DynamicStop(*a)),
    st.tuples(st.integers(1, 3), st.integers(0, 2)).map(lambda a: Heuristic(a[0], a[0] + a[1])),
    st.tuples(st.sampled_from(["confidence", "disco", "specdec"]), st.integers(1, 3), st.floats(0.0, 1.0)).map(
        lambda a: _stop_rule(*a)),
)


def _horizon(policy):
    return 3 if isinstance(policy, Static) and policy.k >= 3 else 4


@pytest.mark.parametrize("mode", ["rs", "greedy"])
@given(seed=st.integers(0, 2**32 - 1), V=st.integers(2, 3), policy=policies)
def test_sequence_standard_and_greedy(mode, seed, V, policy):
    tab = Tables(seed)
    target = lambda s: tab.dist(0, s, V)  # noqa: E731
    proposal = lambda s: tab.dist(1, s, V)  # noqa: E731
    H = _horizon(policy)
    event(f"{mode} {type(policy).__name__}")
    if mode == "greedy":  # temperature 0: the target's law is the one-hot argmax chain
        greedy_target = lambda s: np.eye(V)[int(std.greedy_output(target(s)))]  # noqa: E731
        law = sequence_law(H, greedy_target, proposal, policy, mode="greedy")
        assert_autoregressive(H, V, greedy_target, law)
    else:
        assert_autoregressive(H, V, target, sequence_law(H, target, proposal, policy))


@st.composite
def seq_hetero(draw):
    """Target ``T`` of 2–3 tokens; drafter = a non-empty subset of ``T`` plus 0–2 own tokens."""
    V = draw(st.integers(2, 3))
    T = tuple("abc"[:V])
    shared = draw(st.lists(st.sampled_from(T), min_size=1, max_size=V, unique=True))
    own = ("x", "y")[: draw(st.integers(0, 2))]
    D = tuple(draw(st.permutations(list(shared) + list(own))))
    return VocabularyMap(Vocabulary(T), Vocabulary(D))


@pytest.mark.parametrize("kind", ["union", "tli", "rdk", "sparse"])
@given(seed=st.integers(0, 2**32 - 1), vm=seq_hetero(), policy=policies, data=st.data())
def test_sequence_heterogeneous(kind, seed, vm, policy, data):
    V, nD = len(vm.target), len(vm.drafter)
    tab = Tables(seed)
    inside = tuple(int(j) for j in np.flatnonzero(vm.drafter_to_target >= 0))
    target = lambda s: tab.dist(0, s, V)  # noqa: E731
    q = lambda s: tab.dist(1, s, nD, inside)  # noqa: E731  (q(I) > 0 at every prefix)
    if kind == "union":
        def proposal(s):
            return tli.union_space(target(s), q(s), vm)[1]
    elif kind == "tli":
        def proposal(s):
            return tli.tli_proposal(q(s), vm)
    else:
        M = data.draw(kernels(vm))
        if kind == "sparse":
            M = rdk.SparseKernel.from_dense(M, data.draw(st.integers(1, V)))

        def proposal(s):
            return rdk.rdk_proposal(q(s), vm, M)
    event(f"{kind} {type(policy).__name__}")
    cache = {}
    cached = lambda s: cache[s] if s in cache else cache.setdefault(s, proposal(s))  # noqa: E731
    H = _horizon(policy)
    assert_autoregressive(H, V, target, sequence_law(H, target, cached, policy))


@settings(max_examples=20)
@pytest.mark.parametrize("kind", ["slrs", "slem"])
@given(seed_t=st.integers(0, 10_000), seed_d=st.integers(0, 10_000), closeness=st.sampled_from([0.0, 0.6]),
       policy=policies)
def test_sequence_string_level(kind, seed_t, seed_d, closeness, policy):
    """SLRS/SLEM over a TokenLM pair: ``ψ(·|prefix)`` is the law of the first target token of a
    fresh draft from the drafter continuing the prefix's text."""
    T = alphabet_vocabulary("ab", ["ab"])
    D = alphabet_vocabulary("ab", ["ba", "bb"])
    base = CharLanguage("ab", order=1, seed=seed_t)
    target_lm = TokenLM(base, T)
    drafter = TokenLM(MixedLanguage(base, CharLanguage("ab", order=1, seed=seed_d), closeness), D)
    text = lambda s: "".join(T.tokens[i] for i in s)  # noqa: E731

    @lru_cache(maxsize=None)
    def target(s):
        return target_lm.next_token_probs(text(s))

    @lru_cache(maxsize=None)
    def psi(s):
        return first_token_law(drafter, T, text(s)).psi

    H = 3
    event(f"{kind} {type(policy).__name__}")
    law = sequence_law(H, target, psi, policy, mode="rs" if kind == "slrs" else "slem")
    assert_autoregressive(H, len(T), target, law)


# ----------------------------------------------------------------------------------------------
# 3. statistical: Monte Carlo frequencies vs p (chi-square), lossless and lossy
# ----------------------------------------------------------------------------------------------


def _bins(p: np.ndarray, n: int):
    """Categories with expected count ≥ 5 each; the rest pooled (into the smallest bin if < 5)."""
    big = n * p >= 5
    groups = [[i] for i in np.flatnonzero(big)]
    rest = list(np.flatnonzero(~big))
    if rest:
        if n * p[rest].sum() >= 5 or not groups:
            groups.append(rest)
        else:
            smallest = min(range(len(groups)), key=lambda g: p[groups[g]].sum())
            groups[smallest] = groups[smallest] + rest
    return groups


def chisq_pvalue(emitted: np.ndarray, p: np.ndarray) -> float:
    """Goodness of fit of the emitted tokens to ``p``; a token with ``p = 0`` emitted → 0."""
    n = emitted.size
    counts = np.bincount(emitted, minlength=p.size)
    if counts.size > p.size or np.any(counts[p == 0] > 0):
        return 0.0  # impossible under the null hypothesis
    groups = _bins(p, n)
    if len(groups) < 2:
        return 1.0
    obs = np.array([counts[g].sum() for g in groups], dtype=float)
    exp = np.array([n * p[g].sum() for g in groups])
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


def power_against(law: np.ndarray, p: np.ndarray, n: int) -> float:
    """Power of :func:`chisq_pvalue` at ``ALPHA`` when the emitted tokens have law ``law``."""
    if np.any(law[p == 0] > 0):
        return 1.0 - (1.0 - law[p == 0].sum()) ** n
    groups = _bins(p, n)
    ell = np.array([law[g].sum() for g in groups])
    pp = np.array([p[g].sum() for g in groups])
    lam = n * np.sum((ell - pp) ** 2 / pp)
    df = len(groups) - 1
    return float(stats.ncx2.sf(stats.chi2.ppf(1 - ALPHA, df), df, lam))


def _fixed_problem():
    """|T| = 7, a pruned drafter that also has its own tokens (order permuted); p bounded below."""
    T = Vocabulary(tuple("abcdefg"))
    D = Vocabulary(("c", "a", "x", "b", "y", "e"))
    vm = VocabularyMap(T, D)
    rng = np.random.default_rng(20250917)
    p = 0.15 / 7 + 0.85 * rng.dirichlet(np.full(7, 0.8))
    q = rng.dirichlet(np.full(6, 0.8))
    M = 0.5 * rdk.identity_kernel(vm) + 0.5 * rng.dirichlet(np.full(7, 0.5), size=6)
    return vm, p, q, M


VM, P, Q, MK = _fixed_problem()
Q_SAME = np.random.default_rng(7).dirichlet(np.full(7, 0.8))  # same-vocabulary drafter for std
SK = rdk.SparseKernel.from_dense(MK, 2)


@lru_cache(maxsize=None)
def _string_pair():
    """A TokenLM pair over 'abc' with different vocabularies, and the context the tests use."""
    T, D = vocabulary_pair("abc", 3, 0.34, seed=3, lengths=(2, 3))
    base = CharLanguage("abc", order=2, seed=11)
    target = TokenLM(base, T)
    drafter = TokenLM(MixedLanguage(base, CharLanguage("abc", order=2, seed=12), 0.5), D)
    ctx = "ab"
    return target, drafter, ctx, target.next_token_probs(ctx), first_token_law(drafter, T, ctx).psi


def _lossless_samples(kind: str, rng: np.random.Generator):
    """(emitted, p) from the module's vectorised sampler of ``kind``."""
    if kind == "std":
        return std.sample(rng, P, Q_SAME, N_MC), P
    if kind == "union":
        return tli.union_sample(rng, P, Q, VM, N_MC), P
    if kind == "tli":
        return tli.tli_sample(rng, P, Q, VM, N_MC), P
    if kind == "rdk":
        return rdk.rdk_sample(rng, P, Q, VM, MK, N_MC), P
    if kind == "rdk_sparse":
        return rdk.rdk_sample(rng, P, Q, VM, SK, N_MC), P
    _, _, _, p, psi = _string_pair()
    if kind == "slrs":
        return slrs.sample(rng, p, psi, N_MC), p
    if kind == "slem":
        return slem.sample(rng, p, psi, N_MC), p
    raise AssertionError(kind)


KINDS = ["std", "union", "tli", "rdk", "rdk_sparse", "slrs", "slem"]


@pytest.mark.parametrize("kind", KINDS)
def test_statistical_lossless(kind):
    s, p = _lossless_samples(kind, np.random.default_rng(1000 + KINDS.index(kind)))
    assert s.emitted.size == N_MC
    pval = chisq_pvalue(s.emitted, p)
    assert pval >= ALPHA, f"{kind}: chi-square p-value {pval:.3g} < {ALPHA} (N = {N_MC})"


def test_statistical_slrs_with_real_drafts():
    """SLRS end to end: drafts made by running the drafter and re-tokenizing its text with the
    target's tokenizer (not drawn from ψ), verified against ``ψ`` — lossless only if ``ψ`` is the
    true law of those drafts."""
    target, drafter, ctx, p, psi = _string_pair()
    T = target.vocab
    tok = GreedyTokenizer(T)
    undecided = {t[:n] for t in T.tokens for n in range(1, len(t))}
    rng = np.random.default_rng(4242)
    n = 20_000
    cdfs = {}
    drafts = np.empty(n, dtype=np.int64)
    for m in range(n):
        w = ""
        while not w or w in undecided:
            c = cdfs.get(w)
            if c is None:
                c = cdfs[w] = np.cumsum(drafter.next_token_probs(ctx + w))
            j = min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), c.size - 1)
            w += drafter.vocab.tokens[j]
        drafts[m] = tok.first_token(w)
    assert chisq_pvalue(drafts, psi) >= ALPHA  # the drafts really have law ψ
    s = core.sample_step(rng, p, psi, proposal=drafts)
    assert chisq_pvalue(s.emitted, p) >= ALPHA
    alpha = float(slrs.acceptance(p, psi))
    assert abs(s.accepted.mean() - alpha) <= SE_TOL * np.sqrt(alpha * (1 - alpha) / n)


def _proposal_of(kind):
    if kind == "std":
        return P, Q_SAME
    if kind == "tli":
        return P, tli.tli_proposal(Q, VM)
    if kind == "rdk":
        return P, rdk.rdk_proposal(Q, VM, MK)
    _, _, _, p, psi = _string_pair()
    return p, psi


def _accept_everything(rng, p, r):
    return core.sample_step(rng, p, r, N_MC, accept_ratio=lambda px, rx: np.ones_like(px)).emitted, r


def _residual_from_p(rng, p, r):
    s = core.sample_step(rng, p, r, N_MC)
    wrong = core.sample_categorical(rng, p, N_MC)
    emitted = np.where(s.accepted, s.proposal, wrong)
    return emitted, np.minimum(p, r) + (1.0 - np.minimum(p, r).sum()) * p


LOSSY = {"accept_all": _accept_everything, "residual_from_p": _residual_from_p}


PROPOSALS = ["std", "tli", "rdk", "slrs"]


@pytest.mark.parametrize("proposal", PROPOSALS)
@pytest.mark.parametrize("variant", sorted(LOSSY))
def test_statistical_rejects_lossy(variant, proposal):
    p, r = _proposal_of(proposal)
    rng = np.random.default_rng(2000 + 10 * sorted(LOSSY).index(variant) + PROPOSALS.index(proposal))
    emitted, lossy_law = LOSSY[variant](rng, p, r)
    power = power_against(lossy_law, p, N_MC)
    assert power >= MIN_POWER, f"the test has only power {power:.4f} against {variant}/{proposal}"
    pval = chisq_pvalue(emitted, p)
    assert pval < ALPHA, f"lossy {variant}/{proposal} passed the chi-square test (p-value {pval:.3g})"
    # and the lossless verifier with the same proposal passes the same test
    ok = core.sample_step(np.random.default_rng(3000 + int(rng.integers(1000))), p, r, N_MC).emitted
    assert chisq_pvalue(ok, p) >= ALPHA


def test_statistical_rejects_slem_emitting_the_draft():
    """SLEM that emits the re-tokenized draft instead of the target's own token has law ψ."""
    _, _, _, p, psi = _string_pair()
    s = slem.sample(np.random.default_rng(77), p, psi, N_MC)
    assert power_against(psi, p, N_MC) >= MIN_POWER
    assert chisq_pvalue(s.proposal, p) < ALPHA
    assert chisq_pvalue(s.emitted, p) >= ALPHA


# ----------------------------------------------------------------------------------------------
# 4. acceptance rates: empirical vs closed forms, orderings, bounds
# ----------------------------------------------------------------------------------------------


def _closed_form(kind):
    """The spec's closed forms, computed here from token strings."""
    if kind == "std":
        return float(np.minimum(P, Q_SAME).sum())
    if kind == "greedy":
        return float(Q_SAME[np.argmax(P)])
    pd, qd = dict(zip(VM.target.tokens, P)), dict(zip(VM.drafter.tokens, Q))
    shared = [s for s in VM.target.tokens if s in qd]
    q_i = sum(qd[s] for s in shared)
    if kind == "union":
        return sum(min(pd[s], qd[s]) for s in shared)
    if kind == "tli":
        return sum(min(pd[s], qd[s] / q_i) for s in shared)
    if kind == "rdk":
        return float(np.minimum(P, ref_rdk(Q, VM, MK)).sum())
    if kind == "rdk_sparse":
        return float(np.minimum(P, ref_rdk(Q, VM, ref_sparse_dense(MK, SK))).sum())
    _, _, _, p, psi = _string_pair()
    if kind == "slrs":
        return float(np.minimum(p, psi).sum())
    if kind == "slem":
        return float((p * psi).sum())
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", KINDS + ["greedy"])
def test_acceptance_empirical_vs_closed_form(kind):
    rng = np.random.default_rng(5000 + (KINDS + ["greedy"]).index(kind))
    if kind == "greedy":
        s = std.greedy_sample(rng, P, Q_SAME, N_MC)
        module = float(std.greedy_acceptance(P, Q_SAME))
    else:
        s, _ = _lossless_samples(kind, rng)
        module = {
            "std": lambda: std.acceptance(P, Q_SAME),
            "union": lambda: tli.union_acceptance(P, Q, VM),
            "tli": lambda: tli.tli_acceptance(P, Q, VM),
            "rdk": lambda: rdk.rdk_acceptance(P, Q, VM, MK),
            "rdk_sparse": lambda: rdk.rdk_acceptance(P, Q, VM, SK),
            "slrs": lambda: slrs.acceptance(*_string_pair()[3:]),
            "slem": lambda: slem.acceptance(*_string_pair()[3:]),
        }[kind]()
    alpha = _closed_form(kind)
    assert abs(float(module) - alpha) <= EXACT
    se = np.sqrt(alpha * (1 - alpha) / N_MC)
    assert abs(s.accepted.mean() - alpha) <= SE_TOL * se + 1e-12, (kind, s.accepted.mean(), alpha)


def test_fixed_problem_orderings():
    """The fixed problem is informative: RDK beats TLI's cap p(I) here, TLI beats union."""
    a_u, a_t = _closed_form("union"), _closed_form("tli")
    p_i = P[VM.drafter_to_target[VM.drafter_to_target >= 0]].sum()
    assert a_u < a_t <= p_i < _closed_form("rdk")
    assert _closed_form("slem") < _closed_form("slrs")


@given(hetero_problems())
def test_acceptance_orderings_union_tli_cap(problem):
    vm, p, q = problem
    a_u = float(tli.union_acceptance(p, q, vm))
    a_t = float(tli.tli_acceptance(p, q, vm))
    p_i = float(p[vm.drafter_to_target[vm.drafter_to_target >= 0]].sum())
    assert a_u <= a_t + EXACT and a_t <= p_i + EXACT
    pd, qd = dict(zip(vm.target.tokens, p)), dict(zip(vm.drafter.tokens, q))
    shared = [s for s in vm.target.tokens if s in qd]
    assert abs(a_u - sum(min(pd[s], qd[s]) for s in shared)) <= EXACT
    q_i = sum(qd[s] for s in shared)
    assert abs(a_t - sum(min(pd[s], qd[s] / q_i) for s in shared)) <= EXACT


@given(hetero_problems().flatmap(lambda pr: st.tuples(st.just(pr), kernels(pr[0]), st.integers(1, 5))))
def test_acceptance_rdk_identity_is_tli_and_sparse_bound(problem_m_k):
    (vm, p, q), M, k = problem_m_k
    ident = rdk.identity_kernel(vm)
    assert abs(float(rdk.rdk_acceptance(p, q, vm, ident)) - float(tli.tli_acceptance(p, q, vm))) <= EXACT
    assert_law(rdk.rdk_proposal(q, vm, ident), tli.tli_proposal(q, vm))
    # closed form and the sparse kernel's bound |α − α̃| ≤ Σ q'_i ε_i
    a = float(rdk.rdk_acceptance(p, q, vm, M))
    assert abs(a - np.minimum(p, ref_rdk(q, vm, M)).sum()) <= EXACT
    sk = rdk.SparseKernel.from_dense(M, k)
    a_s = float(rdk.rdk_acceptance(p, q, vm, sk))
    qp = np.where(vm.drafter_to_target >= 0, q, 0.0)
    qp /= qp.sum()
    bound = float(qp @ (1.0 - np.array([M[i, sk.index[i]].sum() for i in range(M.shape[0])])))
    assert abs(sk.bound(qp) - bound) <= EXACT
    assert abs(a - a_s) <= bound + EXACT


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(dists(n), dists(n))))
def test_acceptance_slem_at_most_slrs(p_psi):
    p, psi = p_psi
    a_slem, a_slrs = float(slem.acceptance(p, psi)), float(slrs.acceptance(p, psi))
    assert abs(a_slem - (p * psi).sum()) <= EXACT and abs(a_slrs - np.minimum(p, psi).sum()) <= EXACT
    assert a_slem <= a_slrs + EXACT


@settings(max_examples=15)
@given(token_lm_pairs())
def test_acceptance_slem_at_most_slrs_on_token_lms(pair):
    target, drafter, context = pair
    p = target.next_token_probs(context)
    psi = first_token_law(drafter, target.vocab, context).psi
    assert float(slem.acceptance(p, psi)) <= float(slrs.acceptance(p, psi)) + EXACT
    assert float(slem.greedy_acceptance(p, psi)) == pytest.approx(psi[np.argmax(p)], abs=EXACT)


# ----------------------------------------------------------------------------------------------
# 5. bad input: named errors, messages that say what is wrong
# ----------------------------------------------------------------------------------------------

T4 = Vocabulary(("a", "b", "c", "d"))
D3 = Vocabulary(("a", "b", "z"))
VM43 = VocabularyMap(T4, D3)
P4 = np.array([0.4, 0.3, 0.2, 0.1])
Q3 = np.array([0.5, 0.3, 0.2])
RNG = np.random.default_rng(0)


@pytest.mark.parametrize("call", [
    lambda q: std.acceptance(P4, q),
    lambda q: std.output_law(P4, q),
    lambda q: std.sample(RNG, P4, q, 5),
    lambda q: std.greedy_acceptance(P4, q),
    lambda q: tli.tli_acceptance(P4, q[:3], VM43),
    lambda q: tli.union_acceptance(P4, q[:3], VM43),
    lambda q: tli.tli_sample(RNG, P4, q[:3], VM43, 5),
    lambda q: rdk.rdk_acceptance(P4, q[:3], VM43, rdk.identity_kernel(VM43)),
    lambda q: rdk.rdk_sample(RNG, P4, q[:3], VM43, rdk.identity_kernel(VM43), 5),
])
def test_q_not_summing_to_one(call):
    with pytest.raises(DistributionError, match=r"q must sum to 1 .* a row sums to 1\.2"):
        call(np.array([0.6, 0.4, 0.2, 0.0]))


@pytest.mark.parametrize("mod", [slrs, slem])
def test_psi_not_summing_to_one(mod):
    with pytest.raises(DistributionError, match=r"psi must sum to 1"):
        mod.acceptance(P4, np.array([0.5, 0.5, 0.5, 0.0]))
    with pytest.raises(DistributionError, match=r"p must sum to 1"):
        mod.output_law(np.array([0.5, 0.1, 0.1, 0.1]), P4)


def test_negative_or_nan_probabilities():
    with pytest.raises(DistributionError, match="negative or non-finite"):
        std.acceptance(P4, np.array([1.2, -0.2, 0.0, 0.0]))
    with pytest.raises(DistributionError, match="negative or non-finite"):
        std.acceptance(np.array([np.nan, 0.5, 0.5, 0.0]), P4)
    with pytest.raises(DistributionError, match="non-empty"):
        std.acceptance(np.array([]), np.array([]))


def test_kernel_not_row_stochastic():
    M = rdk.identity_kernel(VM43)
    M[1, 0] = 0.5  # row 1 sums to 1.5
    with pytest.raises(DistributionError, match=r"row-stochastic, but row 1 sums to 1\.5"):
        rdk.rdk_acceptance(P4, Q3, VM43, M)
    with pytest.raises(DistributionError, match=r"row-stochastic"):
        rdk.rdk_sample(RNG, P4, Q3, VM43, M, 5)
    neg = rdk.identity_kernel(VM43)
    neg[0, :2] = [1.5, -0.5]
    with pytest.raises(DistributionError, match="M has negative"):
        rdk.rdk_proposal(Q3, VM43, neg)


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5), (12,)])
def test_kernel_wrong_shape(shape):
    M = np.full(shape, 1.0 / shape[-1])
    with pytest.raises(VocabularyError, match=r"M must be \|D\| x \|T\| = 3 x 4"):
        rdk.rdk_output_law(P4, Q3, VM43, M)
    with pytest.raises(VocabularyError, match=r"M must be \|D\| x \|T\|"):
        rdk.check_kernel(M, VM43)


def test_empty_intersection():
    vm = VocabularyMap(T4, Vocabulary(("x", "y", "z")))
    for call in (lambda: tli.tli_proposal(Q3, vm), lambda: tli.tli_acceptance(P4, Q3, vm),
                 lambda: tli.tli_sample(RNG, P4, Q3, vm, 5),
                 lambda: rdk.rdk_acceptance(P4, Q3, vm, np.full((3, 4), .25)),
                 lambda: rdk.rdk_sample(RNG, P4, Q3, vm, np.full((3, 4), .25), 5)):
        with pytest.raises(VocabularyError, match="share no token"):
            call()
    # the union baseline has no such requirement: it simply never accepts
    assert float(tli.union_acceptance(P4, Q3, vm)) == 0.0
    law = tli.union_output_law(P4, Q3, vm)
    assert_law(law[:4], P4) and np.all(law[4:] == 0.0)


def test_no_mass_on_intersection():
    q = np.array([0.0, 0.0, 1.0])  # all mass on the drafter-only 'z'
    with pytest.raises(DistributionError, match="no mass on the intersection"):
        tli.tli_acceptance(P4, q, VM43)
    with pytest.raises(DistributionError, match="no mass on the intersection"):
        rdk.rdk_acceptance(P4, q, VM43, rdk.identity_kernel(VM43))


@pytest.mark.parametrize("call", [
    lambda p, q: tli.tli_acceptance(p, q, VM43),
    lambda p, q: tli.tli_output_law(p, q, VM43),
    lambda p, q: tli.union_acceptance(p, q, VM43),
    lambda p, q: tli.union_sample(RNG, p, q, VM43, 5),
    lambda p, q: rdk.rdk_acceptance(p, q, VM43, rdk.identity_kernel(VM43)),
    lambda p, q: rdk.rdk_sample(RNG, p, q, VM43, rdk.identity_kernel(VM43), 5),
])
def test_mismatched_vocabulary_maps(call):
    with pytest.raises(VocabularyError, match="p has 3 entries but the target vocabulary has 4 tokens"):
        call(np.array([0.5, 0.3, 0.2]), Q3)
    with pytest.raises(VocabularyError, match="q has 4 entries but the drafter vocabulary has 3 tokens"):
        call(P4, P4)


def test_bad_vocabularies():
    with pytest.raises(VocabularyError, match="appears twice"):
        Vocabulary(("a", "b", "a"))
    with pytest.raises(VocabularyError, match="non-empty strings"):
        Vocabulary(("a", ""))
    with pytest.raises(VocabularyError, match="at least one token"):
        Vocabulary(())
    with pytest.raises(VocabularyError, match="lacks the characters"):
        TokenLM(CharLanguage("abc"), Vocabulary(("a", "b")))
    with pytest.raises(VocabularyError, match=r"target_dists must be \(contexts, 4\)"):
        rdk.affinity_kernel(np.full((5, 3), 1 / 3), VM43)


# ----------------------------------------------------------------------------------------------
# regressions: defects found by these tests and since fixed
# ----------------------------------------------------------------------------------------------


def test_regression_residual_threshold():
    """``core.residual`` once fell back to ``p`` whenever ``Σ(p − r)_+ <= 1e-9``, putting the law off by up
    to twice that mass; the exact checks above had to skip nearly equal pairs.  Any positive excess now
    defines the residual, so nearly equal pairs are exact too — swept here across the old window."""
    p = np.array([0.5, 0.3, 0.2])
    for tv in [1e-15, 1e-13, 5e-13, 1e-12, 1e-11, 1e-10, 1e-9, 2e-9]:
        r = p + tv * np.array([1.0, -1.0, 0.0])
        assert_law(ref_step_law(p, r), p)  # the mechanism itself is exact
        assert_law(core.output_law(p, r), p)
        assert_law(std.output_law(p, r), p)
        assert np.max(np.abs(core.residual(p, r) - np.array([0.0, 1.0, 0.0]))) <= 1e-3  # the excess, not p


def test_regression_row_sampler_precision():
    class FixedU:
        def random(self, size):
            return np.full(size, 1.0 - 2.0**-40)

    m = 10_000
    probs = np.tile([0.5, 0.5, 0.0], (m, 1))
    idx = core.sample_categorical(FixedU(), probs)
    assert np.all(probs[np.arange(m), idx] > 0), f"{int(np.sum(idx == 2))} rows drew a zero-probability token"


@pytest.mark.parametrize("call", [
    lambda a, b: std.acceptance(a, b),
    lambda a, b: std.output_law(a, b),
    lambda a, b: std.greedy_acceptance(a, b),
    lambda a, b: slem.acceptance(a, b),
    lambda a, b: slem.output_law(a, b),
    lambda a, b: slrs.acceptance(a, b),
    lambda a, b: std.sample(np.random.default_rng(0), a, b, 10),
    lambda a, b: slem.sample(np.random.default_rng(0), a, b, 10),
], ids=["std.acceptance", "std.output_law", "std.greedy_acceptance", "slem.acceptance", "slem.output_law",
        "slrs.acceptance", "std.sample", "slem.sample"])
def test_regression_same_vocabulary_length_mismatch(call):
    for a, b in [(np.array([1.0]), P4), (P4, np.array([1.0])), (Q3, P4)]:
        try:
            call(a, b)
        except (DistributionError, VocabularyError):
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"lengths {a.size} vs {b.size}: {type(e).__name__}: {e} (not a named error)")
        pytest.fail(f"lengths {a.size} vs {b.size}: accepted silently")


def test_regression_sparse_kernel_not_validated():
    bad = [np.array([[2.0, 1.0, 1.0, 0.0], [0, 1, 0, 0], [0.25] * 4]),  # row 0 sums to 4
           np.array([[1.5, -0.5, 0, 0], [0, 1, 0, 0], [0.25] * 4])]  # negative entry
    for M in bad:
        try:
            rdk.SparseKernel.from_dense(M, 2)
        except DistributionError:
            continue
        pytest.fail(f"SparseKernel.from_dense accepted a non-row-stochastic M:\n{M}")
    for shape in [(3, 5), (2, 4)]:
        sk = rdk.SparseKernel.from_dense(np.full(shape, 1.0 / shape[1]), 2)
        try:
            rdk.rdk_acceptance(P4, Q3, VM43, sk)
        except VocabularyError:
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"SparseKernel of shape {shape}: {type(e).__name__}: {e} (not a VocabularyError)")
        pytest.fail(f"SparseKernel of shape {shape} accepted silently")


def test_backoff_kernel_is_a_lossless_rdk_kernel_and_lam_zero_is_tli():
    from simspec.sampling.vocab import Vocabulary, VocabularyMap

    T = Vocabulary(tuple("abcdef"))
    vm = VocabularyMap(T, T.subset([0, 2, 3]))
    rng = np.random.default_rng(4)
    p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(3))
    freqs = rng.random(6)
    for lam in (0.0, 0.3, 1.0):
        M = rdk.backoff_kernel(vm, freqs, lam)
        assert np.allclose(rdk.rdk_output_law(p, q, vm, M), p, atol=1e-12)
    assert rdk.rdk_acceptance(p, q, vm, rdk.backoff_kernel(vm, freqs, 0.0)) == pytest.approx(
        tli.tli_acceptance(p, q, vm), abs=1e-12)
    with pytest.raises(DistributionError, match="lam must be in"):
        rdk.backoff_kernel(vm, freqs, 1.5)
