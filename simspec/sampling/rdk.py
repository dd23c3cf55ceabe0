"""Out-of-vocabulary sampling: RDK, Redistributing Drafter Kernels.

Timor, Mamou, Pereg et al., arXiv 2506.03206.  A drafter with a pruned
vocabulary is fast, but TLI can never propose a pruned token, so its acceptance
is capped at ``p(I)``.  RDK gives each drafter token ``i`` a *kernel*
``M[i, :]`` over target tokens (``M`` row-stochastic, ``|D| × |T|``) and
proposes ``r = Mᵀ q'``: draw ``i ~ q'``, then ``x ~ M[i, :]``.  Verification is
standard (:mod:`.core`), so RDK is lossless for any ``M``;
``α_RDK = Σ min(p, r)``; ``M`` = the intersection's identity gives TLI.

Dense ``r = Mᵀq'`` costs ``O(|D|·|T|)``.  :class:`SparseKernel` keeps each
row's ``K`` largest entries (renormalised): ``r̃`` costs ``O(|D|·K)``, is still
a distribution (so still lossless), and its acceptance is within
``Σ_i q'_i ε_i ≤ max_i ε_i`` of the dense one, ``ε_i`` the mass row ``i``
drops (``theory/rdk_sparse_kernel.md``).

The affinity prior :func:`affinity_kernel` builds ``M_ij ∝ exp(Ω_ij / τ)`` from
``Ω``, the covariance of the target's next-token distributions over a corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DistributionError, VocabularyError
from . import core
from .vocab import VocabularyMap

__all__ = [
    "check_kernel", "identity_kernel", "rdk_proposal", "rdk_acceptance", "rdk_output_law", "rdk_sample",
    "SparseKernel", "affinity_kernel", "backoff_kernel", "drafter_q_prime",
]


def check_kernel(M, vm: VocabularyMap) -> np.ndarray:
    """``M`` as a float ``|D| × |T|`` row-stochastic matrix, or a named error saying what is wrong."""
    M = np.asarray(M, dtype=float)
    if M.shape != (len(vm.drafter), len(vm.target)):
        raise VocabularyError(
            f"M must be |D| x |T| = {len(vm.drafter)} x {len(vm.target)} (a kernel over target tokens per "
            f"drafter token), got {M.shape}"
        )
    return _row_stochastic(M)


def _row_stochastic(M: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(M)) or np.any(M < 0):
        raise DistributionError("M has negative or non-finite entries")
    rows = M.sum(axis=1)
    bad = np.flatnonzero(np.abs(rows - 1.0) > 1e-6)
    if bad.size:
        raise DistributionError(
            f"M must be row-stochastic, but row {bad[0]} sums to {rows[bad[0]]:.6g}; divide each row by its sum"
        )
    return M


def identity_kernel(vm: VocabularyMap) -> np.ndarray:
    """The kernel that sends each drafter token to itself in ``T`` (RDK with it is TLI).

    Drafter tokens outside ``I`` get a uniform row (``q'`` never draws them).
    """
    M = np.full((len(vm.drafter), len(vm.target)), 1.0 / len(vm.target))
    inside = np.flatnonzero(vm.drafter_to_target >= 0)
    M[inside] = 0.0
    M[inside, vm.drafter_to_target[inside]] = 1.0
    return M


@dataclass(frozen=True)
class SparseKernel:
    """Each drafter token's ``K`` largest kernel entries, renormalised: ``O(|D|·K)`` proposals.

    ``dropped[i]`` is the mass ``ε_i`` row ``i`` lost; the acceptance of the
    sparse proposal is within ``Σ_i q'_i ε_i`` of the dense one.
    """

    index: np.ndarray  # (|D|, K) target indices
    weight: np.ndarray  # (|D|, K), rows sum to 1
    dropped: np.ndarray  # (|D|,)
    n_target: int

    @classmethod
    def from_dense(cls, M: np.ndarray, k: int) -> "SparseKernel":
        """Keep each row's ``k`` largest entries of the row-stochastic ``M`` (checked), renormalised."""
        M = np.asarray(M, dtype=float)
        if M.ndim != 2:
            raise VocabularyError(f"M must be a |D| x |T| matrix, got shape {M.shape}")
        _row_stochastic(M)
        k = int(min(max(k, 1), M.shape[1]))
        idx = np.ascontiguousarray(np.argpartition(-M, k - 1, axis=1)[:, :k])  # not a view of |D| x |T|
        w = np.take_along_axis(M, idx, axis=1)
        kept = w.sum(axis=1)
        if np.any(kept <= 0):
            raise DistributionError("a kernel row has no positive entry among its top K")
        return cls(idx, w / kept[:, None], 1.0 - kept, M.shape[1])

    def proposal(self, q_prime_drafter: np.ndarray) -> np.ndarray:
        """``r̃ = M̃ᵀ q'`` by scatter-add over the ``|D|·K`` kept entries (rows of ``q'`` at once if 2-D)."""
        qd = np.asarray(q_prime_drafter, dtype=float)
        if qd.ndim == 1:
            contrib = (qd[:, None] * self.weight).ravel()
            return np.bincount(self.index.ravel(), weights=contrib, minlength=self.n_target)
        m = qd.shape[0]
        contrib = (qd[:, :, None] * self.weight[None]).ravel()
        flat = (np.arange(m)[:, None, None] * self.n_target + self.index[None]).ravel()
        return np.bincount(flat, weights=contrib, minlength=m * self.n_target).reshape(m, self.n_target)

    def bound(self, q_prime_drafter: np.ndarray):
        """``Σ_i q'_i ε_i``: how far the sparse acceptance can be from the dense one (per row of ``q'``)."""
        out = np.asarray(q_prime_drafter) @ self.dropped
        return float(out) if np.ndim(out) == 0 else out


def _check_sparse(M: SparseKernel, vm: VocabularyMap) -> None:
    if M.index.shape[0] != len(vm.drafter) or M.n_target != len(vm.target):
        raise VocabularyError(
            f"the sparse kernel is {M.index.shape[0]} x {M.n_target} but the vocabularies need "
            f"|D| x |T| = {len(vm.drafter)} x {len(vm.target)}"
        )


def drafter_q_prime(q, vm: VocabularyMap) -> np.ndarray:
    """TLI's ``q' = q/q(I)`` indexed by *drafter* tokens (zero outside ``I``): what kernels and bounds take."""
    q = core.check_distribution("q", q)
    vm.check_drafter(q)
    vm.require_intersection()
    inside = vm.drafter_to_target >= 0
    mass = q[..., inside].sum(axis=-1, keepdims=True)
    if np.any(mass <= 0):
        raise DistributionError("q puts no mass on the intersection, so RDK has nothing to redistribute")
    return np.where(inside, q, 0.0) / mass


def rdk_proposal(q, vm: VocabularyMap, M) -> np.ndarray:
    """``r = Mᵀ q'`` over the target's vocabulary (dense ``M`` or a :class:`SparseKernel`)."""
    qd = drafter_q_prime(q, vm)
    if isinstance(M, SparseKernel):
        _check_sparse(M, vm)
        return M.proposal(qd)
    return qd @ check_kernel(M, vm)


def rdk_acceptance(p, q, vm: VocabularyMap, M) -> np.ndarray:
    """``Σ min(p, Mᵀ q')``."""
    p = core.check_distribution("p", p)
    vm.check_target(p)
    return core.acceptance(p, rdk_proposal(q, vm, M))


def rdk_output_law(p, q, vm: VocabularyMap, M) -> np.ndarray:
    p = core.check_distribution("p", p)
    vm.check_target(p)
    return core.output_law(p, rdk_proposal(q, vm, M))


def rdk_sample(rng: np.random.Generator, p, q, vm: VocabularyMap, M, n: int) -> core.StepSample:
    """``n`` verification steps, proposals drawn in two stages: ``i ~ q'``, ``x ~ M[i, :]``."""
    p = core.check_distribution("p", p)
    vm.check_target(p)
    qd = drafter_q_prime(q, vm)
    if p.ndim != 1 or qd.ndim != 1:
        raise DistributionError("rdk_sample draws n steps for one context: give 1-D p and q")
    i = core.sample_categorical(rng, qd, n)
    if isinstance(M, SparseKernel):
        _check_sparse(M, vm)
        r = M.proposal(qd)
        pick = core.sample_categorical(rng, M.weight[i])
        x = M.index[i, pick]
    else:
        M = check_kernel(M, vm)
        r = qd @ M
        x = core.sample_categorical(rng, M[i])
    return core.sample_step(rng, p, r, proposal=x)


def affinity_kernel(target_dists: np.ndarray, vm: VocabularyMap, tau: float | None = None,
                    correlation: bool = True, oov_only: bool = True) -> np.ndarray:
    """``M_ij ∝ exp(Ω_ij / τ)`` from the target's next-token laws over a corpus (``(contexts, |T|)``).

    ``Ω`` is the covariance over contexts of the target's token probabilities
    (the prior secondary sources report), normalised to correlations by default:
    a covariance row need not peak at the token itself (a rare token correlated
    with a frequent one would hand its mass away), a correlation row does
    (``ρ_ii = 1``).  Row ``i`` of ``M`` belongs to drafter token ``i`` (its target
    token's row of ``Ω``); rows outside ``I`` are uniform.  ``oov_only``: a kernel
    spreads only onto itself and the tokens the drafter lacks — moving mass to
    another drafter token can only blur what the drafter already says.  ``τ`` defaults to
    0.05 for correlations (a token correlated at 0.9 gets ``e^{-2}`` of the
    token's own weight, one correlated at 0.5 ``e^{-10}``) and to a twentieth of
    the mean variance for covariances; the best ``τ`` depends on how much mass
    pruning removed and how predictable it is — validate it on held-out contexts.  Dense:
    ``O(|T|²)`` memory — keep a :class:`SparseKernel` of it for large vocabularies.
    """
    P = core.check_distribution("target_dists", target_dists)
    if P.ndim != 2 or P.shape[1] != len(vm.target):
        raise VocabularyError(f"target_dists must be (contexts, {len(vm.target)}), got {P.shape}")
    inside = np.flatnonzero(vm.drafter_to_target >= 0)
    rows_t = vm.drafter_to_target[inside]
    centred = P - P.mean(axis=0)
    omega = centred[:, rows_t].T @ centred / max(P.shape[0] - 1, 1)  # (|I|, |T|)
    var = (centred**2).sum(axis=0) / max(P.shape[0] - 1, 1)
    if correlation:
        sd = np.sqrt(var)
        with np.errstate(divide="ignore", invalid="ignore"):
            omega = np.where(np.outer(sd[rows_t], sd) > 0, omega / np.outer(sd[rows_t], sd), 0.0)
        omega[np.arange(rows_t.size), rows_t] = 1.0  # a token with no variance is still itself
        default_tau = 0.05
    else:
        default_tau = 0.05 * float(var[var > 0].mean()) if np.any(var > 0) else 1.0
    tau = default_tau if tau is None else float(tau)
    if not tau > 0:
        raise DistributionError(f"tau must be > 0, got {tau}")
    z = omega / tau
    if oov_only:
        inside_t = np.zeros(len(vm.target), dtype=bool)
        inside_t[rows_t] = True
        blocked = np.broadcast_to(inside_t, z.shape).copy()
        blocked[np.arange(rows_t.size), rows_t] = False
        z = np.where(blocked, -np.inf, z)
    z -= z.max(axis=1, keepdims=True)
    K = np.exp(z)
    M = np.full((len(vm.drafter), len(vm.target)), 1.0 / len(vm.target))
    M[inside] = K / K.sum(axis=1, keepdims=True)
    return M


def backoff_kernel(vm: VocabularyMap, target_freqs, lam: float) -> np.ndarray:
    """Keep ``1 − lam`` of each drafter token's mass, spread ``lam`` over the tokens the drafter lacks.

    The spread follows the target tokens' corpus frequencies (a unigram back-off)
    and is the same for every drafter token: no affinity at all.  TLI's proposal
    leaves the target's mass outside the drafter vocabulary, ``1 − p(I)``, to be
    rejected every time; moving about that much onto those tokens recovers most
    of it — in ``experiments/rdk_pruning`` this beats the affinity prior.  The
    kernel is identity plus rank one, so ``r = (1 − lam) q' + lam u`` costs
    ``O(|T|)`` even in dense form.  ``lam = 0`` is TLI.
    """
    freqs = np.asarray(target_freqs, dtype=float)
    if freqs.shape != (len(vm.target),) or np.any(freqs < 0) or not np.all(np.isfinite(freqs)):
        raise DistributionError(f"target_freqs must be {len(vm.target)} non-negative numbers, one per target token")
    if not 0.0 <= lam <= 1.0:
        raise DistributionError(f"lam must be in [0, 1], got {lam}")
    M = identity_kernel(vm)
    outside = vm.target_to_drafter < 0
    u = np.where(outside, freqs, 0.0)
    if u.sum() > 0 and lam > 0:
        inside = np.flatnonzero(vm.drafter_to_target >= 0)
        M[inside] = (1.0 - lam) * M[inside] + lam * (u / u.sum())[None, :]
    return M
