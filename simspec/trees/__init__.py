"""Token trees: draft several continuations at once, verify them all in one forward.

A chain of drafts is one guess at the next ``k`` tokens; a *token tree* hedges.
Think of a hiker at a fork who sends scouts down the two or three likeliest
paths, and further scouts at the forks after those: the target model walks the
whole map in one forward (tree attention masks every node to its own ancestors,
SpecInfer) and follows the longest path it agrees with.  A wider map makes it
likelier that some path survives, and makes the verification forward wider and
slower.  This module answers three questions: how many tokens does a tree yield
per verification, which tree of ``n`` nodes yields the most, and which ``n``
pays on given hardware.

Papers: SpecInfer (Miao et al. 2024, "SpecInfer: Accelerating Large Language
Model Serving with Tree-based Speculative Inference and Verification") —
token trees verified in one forward; Sequoia (Chen et al. 2024, "Sequoia:
Scalable, Robust, and Hardware-aware Speculative Decoding") — the positional
acceptance vector, the dynamic program for the optimal tree, and the choice of
the tree's size and depth for the hardware; EAGLE-2 (Li et al. 2024, "EAGLE-2:
Faster Inference of Language Models with Dynamic Draft Trees") — trees grown by
the drafter's confidence.

**The convention** (``theory/trees.md``).  The root is the last verified
token (depth 0); draft nodes have depths ``1, 2, ...``; a node's children are
the drafter's top-``m`` tokens there, with *sibling ranks* ``1..m`` (rank 1 the
likeliest).  Acceptance follows Sequoia's positional law: given that a node is
accepted, its child of rank ``r`` is *the* accepted child with probability
``p_r(d)`` (``d`` the child's depth), whatever the other children; at most one
child is accepted, so ``Σ_{r ≤ m} p_r(d) ≤ 1`` is the chance that any of ``m``
children is, and the levels are independent.  Then a node is accepted iff every
node on its path is, with probability ``Π_path p``, and by linearity the
expected tokens of one verification (accepted drafts plus the target's own
token) is

    E[accepted length] = 1 + Σ_nodes Π_{v on the path to the node} p_{rank(v)}(depth(v)),

which for a chain with ``p_1 = a`` is SI's ``(1 − a^{k+1})/(1 − a)``.

>>> from simspec.trees import TokenTree, PositionalTreeAcceptance, expected_accepted_length, optimal_tree
>>> law = PositionalTreeAcceptance((0.6, 0.2, 0.1))
>>> chain, best = TokenTree.chain(4), optimal_tree(4, law)
>>> round(expected_accepted_length(chain, law), 4), round(expected_accepted_length(best, law), 4)
(2.3056, 2.376)
"""

from __future__ import annotations

from .best import TreeChoice, best_tree
from .dynamic import dynamic_tree
from .law import PositionalTreeAcceptance, TreeAcceptance
from .length import TreeRounds, expected_accepted_length, simulate_tree
from .optimal import optimal_tree
from .shapes import TokenTree

__all__ = [
    "TokenTree",
    "TreeAcceptance",
    "PositionalTreeAcceptance",
    "expected_accepted_length",
    "simulate_tree",
    "TreeRounds",
    "optimal_tree",
    "best_tree",
    "TreeChoice",
    "dynamic_tree",
]
