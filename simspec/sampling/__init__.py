"""Token-level verification: lossless speculative sampling over shared, heterogeneous and pruned vocabularies.

One verification step (:mod:`.core`) underlies every verifier; each verifier
lives in its own module with its paper named: :mod:`.std` (standard and greedy,
Leviathan et al. 2023, Chen et al. 2023), :mod:`.tli` (union baseline and TLI,
Timor et al. 2025), :mod:`.slem` and :mod:`.slrs` (SLEM and SLRS, same paper; their ``ψ`` in :mod:`.retokenize`), :mod:`.rdk`
(RDK, Timor et al. 2025b).  :mod:`.vocab` holds vocabularies and tokenizers,
:mod:`.models` synthetic language models.  :mod:`.verifiers` is the registry
that names them (``register_verifier``, ``verifiers``) and runs any of them on a
drafter/target pair (``TokenPair.step``).
"""
