"""Token-level verification: lossless speculative sampling over shared, heterogeneous and pruned vocabularies.

One verification step (:mod:`.core`) underlies every verifier; each verifier
lives in its own module with its paper named: :mod:`.std` (standard and greedy,
Leviathan et al. 2023, Chen et al. 2023), :mod:`.tli` (union baseline and TLI,
Timor et al. 2025), :mod:`.slem` and :mod:`.slrs` (SLEM and SLRS, same paper; their ``ψ`` in :mod:`.retokenize`), :mod:`.rdk`
(RDK, Timor et al. 2025b).  :mod:`.vocab` holds vocabularies and tokenizers,
:mod:`.models` synthetic language models.  :mod:`.verifiers` is the registry
that names them (``register_verifier``, ``verifiers``) and runs any of them on a
drafter/target pair (``TokenPair.step``).

Several drafts at one position and token trees are :mod:`.multidraft`'s
(SpecInfer, Miao et al. 2024, siblings drawn with replacement; recursive
rejection sampling, Jeon et al. 2024, without); its names are re-exported here.
"""

from . import multidraft
from .multidraft import (METHODS, REPLACEMENT, DraftNode, MultidraftSample, TreeVerification, draw_siblings, draw_tree,
                         multidraft_acceptance, multidraft_step, multidraft_step_law, verify_tree)

__all__ = [
    # multiple drafts at one node
    "METHODS", "REPLACEMENT", "draw_siblings", "multidraft_step", "MultidraftSample", "multidraft_step_law",
    "multidraft_acceptance",
    # token trees
    "DraftNode", "draw_tree", "verify_tree", "TreeVerification",
]

assert set(__all__) == set(multidraft.__all__), "simspec.sampling re-exports multidraft's public names, all of them"
