"""Token trees under load (``serve(..., algorithms=(..., "tree"))``): tree SI's rounds in the batching engine.

Pinned: at batch 1 with a request at a time every request's latency is the discrete-event tree engine's
(``run_once(..., "tree")``), overheads and context-dependent latencies included; a chain tree is SI under load
request by request, under KV pressure and preemption too; every request gets exactly its tokens; a tree's
level is one batched drafter forward of its width; bad input is named.
"""

from __future__ import annotations

import numpy as np
import pytest

from simspec import ConstantLatency, IIDAcceptance, InvalidParameterError, Overheads, Scenario, StaticLookahead, TokenTree
from simspec.batch_latency import BatchedLatency
from simspec.des.runner import run_once
from simspec.des.tree import TreeSpec
from simspec.serving import Batching, PoissonArrivals, RequestTable, UniformLengths, Workload, serve
from simspec.serving.engine import run_engine
from simspec.trees import PositionalTreeAcceptance

from test_serving import ContextLatency, _outcomes

OV = Overheads(message_ms=0.7, sync_ms=1.1, startup_ms=0.3, per_round_ms=0.2, per_draft_token_ms=0.05,
               per_drafter_forward_ms=0.04, per_emitted_token_ms=0.01)


@pytest.mark.parametrize("branching", [[2, 2, 1], [3, 1], [1, 1, 1, 1]])
def test_one_request_at_a_time_equals_the_tree_engine(branching):
    """Rate -> 0 and batch 1: each request's latency, TTFT and drafts are run_once's tree run's.  A sibling is
    accepted for sure (h_2 = 1) or never (h_3 = 0), so the two engines' sibling streams cannot differ."""
    target, drafter = ContextLatency(30.0, 0.5, ttft_ms=80.0), ContextLatency(3.0, 0.1, ttft_ms=9.0)
    table = RequestTable(np.arange(6) * 1e7, [5, 40, 12, 7, 90, 33], [17, 64, 1, 2, 40, 25])
    outcomes = _outcomes(np.random.default_rng(3), table)
    spec = TreeSpec(TokenTree.k_ary(branching), PositionalTreeAcceptance.from_conditional([0.5, 1.0, 0.0]))
    eng = run_engine(table, outcomes, None, BatchedLatency(target), BatchedLatency(drafter), "tree", None,
                     Batching(max_batch=1), OV, np.random.default_rng(0), spec, np.random.default_rng(1))
    for r, acc in zip(eng.requests, outcomes):
        s = Scenario(target, drafter, IIDAcceptance(0.7), tokens=int(acc.size), prompt_len=r.prompt, overheads=OV)
        rec = run_once(s, "tree", acc, lookahead=spec)
        assert r.finish - r.arrival == pytest.approx(rec.latency_ms, rel=1e-12, abs=1e-6)
        assert r.first_token - r.arrival == pytest.approx(rec.ttft_ms, rel=1e-12, abs=1e-6)
        assert r.drafts == rec.drafter_forwards and r.rounds == rec.target_forwards


@pytest.mark.parametrize("kv_blocks", [None, 25])
def test_a_chain_tree_is_si_under_load_request_by_request(kv_blocks):
    """Batches of up to 8, Poisson arrivals, every overhead, and (kv_blocks=25) a KV cache small enough to
    preempt: a chain tree of depth 3 gives every request SI(k=3)'s finish time and drafts."""
    table = RequestTable(np.cumsum(np.random.default_rng(5).exponential(5.0, 30)), [30] * 30,
                         np.random.default_rng(6).integers(5, 80, 30))
    outcomes = _outcomes(np.random.default_rng(7), table)
    cfg = Batching(max_batch=8, kv_blocks=kv_blocks, block_size=16)
    models = (BatchedLatency(ContextLatency(30.0, 0.5, ttft_ms=50.0)), BatchedLatency(ContextLatency(3.0, 0.1)))
    si = run_engine(table, outcomes, None, *models, "si", StaticLookahead(3), cfg, OV, np.random.default_rng(0))
    spec = TreeSpec(TokenTree.chain(3), PositionalTreeAcceptance.from_chain_rate(0.7))
    tree = run_engine(table, outcomes, None, *models, "tree", None, cfg, OV, np.random.default_rng(0), spec,
                      np.random.default_rng(1))
    assert [r.finish for r in tree.requests] == [r.finish for r in si.requests]
    assert [r.drafts for r in tree.requests] == [r.drafts for r in si.requests]
    assert [r.preemptions for r in tree.requests] == [r.preemptions for r in si.requests]
    if kv_blocks is not None:
        assert sum(r.preemptions for r in si.requests) > 0  # the cache was under pressure


def test_every_request_gets_its_tokens_and_siblings_raise_tokens_per_step():
    """Under KV pressure every request ends with exactly its tokens (its rounds' accepted drafts plus one token
    each add up to its output) and the cache is never over-committed; a tree whose siblings rescue rejections
    emits more tokens per sequence-step than the chain, which emits SI's."""
    table = RequestTable(np.cumsum(np.random.default_rng(1).exponential(5.0, 40)), [32] * 40,
                         np.random.default_rng(2).integers(20, 90, 40))
    outcomes = _outcomes(np.random.default_rng(3), table, rate=0.6)
    cfg = Batching(max_batch=16, kv_blocks=40, block_size=16)
    spec = TreeSpec(TokenTree.k_ary([3, 2, 1]), PositionalTreeAcceptance.from_chain_rate(0.6, sibling_rate=0.5))
    eng = run_engine(table, outcomes, None, BatchedLatency(ConstantLatency(30.0)), BatchedLatency(ConstantLatency(3.0)),
                     "tree", None, cfg, OV, np.random.default_rng(0), spec, np.random.default_rng(1))
    assert all(r.pos == r.S and r.accepted + r.rounds == r.S for r in eng.requests)
    assert sum(r.preemptions for r in eng.requests) > 0
    assert all(rep.peak_blocks <= 40 and rep.free_blocks == 40 for rep in eng.replicas)

    w = Workload(PoissonArrivals(rate=20.0), prompt_len=32, output_len=UniformLengths(20, 90), requests=60)
    kw = dict(lookahead=3, batching=Batching(max_batch=16), replications=2, rng=4)
    models = (ConstantLatency(30.0, ttft_ms=40.0), ConstantLatency(3.0), IIDAcceptance(0.6))
    chain = serve(w, *models, algorithms=("si", "tree"), tree=TokenTree.chain(3), **kw)
    wide = serve(w, *models, algorithms=("si", "tree"), tree=spec.tree, tree_acceptance=spec.law, **kw)
    assert chain.metrics["tree"]["tokens_per_step"].mean == chain.metrics["si"]["tokens_per_step"].mean
    assert wide.metrics["tree"]["tokens_per_step"].mean > chain.metrics["tree"]["tokens_per_step"].mean
    assert "tree(size=15, depth=3)" in str(wide) and "tree SI vs SI" in str(wide)


def test_a_trees_level_is_one_batched_drafter_forward_of_its_width():
    """Two requests decode together with a 2-ary tree of depth 2 (draft widths 1 and 2) and a drafter priced by
    its batch's token count: T_d(n tokens) = 1 + 0.5·(n − 1).  The step's drafting is T_d(1 + 1) + T_d(2 + 2) =
    1.5 + 2.5; with a chain of depth 2 it is T_d(2) + T_d(2) = 3."""
    from simspec import AffineLatency
    from simspec.serving.engine import _Engine

    table = RequestTable(np.zeros(2), [4, 4], [30, 30])
    outcomes = [np.ones(30, bool), np.ones(30, bool)]
    drafter = BatchedLatency(AffineLatency(1.0, 0.5))
    target = BatchedLatency(ConstantLatency(10.0))
    law = PositionalTreeAcceptance.from_chain_rate(0.7)
    steps = {}
    for name, tree in (("tree", TokenTree.k_ary([2, 2])), ("chain", TokenTree.chain(2))):
        eng = _Engine(table, outcomes, None, target, drafter, "tree", None, Batching(max_batch=2), Overheads(),
                      np.random.default_rng(0), TreeSpec(tree, law), np.random.default_rng(1))
        batch = eng.requests
        plan = eng.plan_rounds(batch, 2)
        steps[name] = eng.decode_step(batch, plan, []) - 10.0  # less the verification
    assert steps == {"tree": pytest.approx(4.0), "chain": pytest.approx(3.0)}


def test_tree_under_load_is_reproducible_and_named_in_the_cli(capsys):
    from simspec.cli import main

    w = Workload(PoissonArrivals(rate=5.0), prompt_len=32, output_len=40, requests=20)
    a = serve(w, ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), algorithms=("tree",),
              tree=TokenTree.k_ary([2, 2]), replications=2, rng=9)
    b = serve(w, ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), algorithms=("tree",),
              tree=TokenTree.k_ary([2, 2]), replications=2, rng=9)
    assert a.per_replication == b.per_replication
    assert main(["serve", "--target-ms", "30", "--drafter-ms", "3", "--acceptance", "0.7", "--rate", "5",
                 "--requests", "20", "--replications", "2", "--tree", "2,2,1", "--sibling-acceptance", "0.4"]) == 0
    out = capsys.readouterr().out
    assert "tree SI vs SI:" in out and "tree(size=" in out
    assert main(["serve", "--target-ms", "30", "--rate", "5", "--tree", "2,2"]) != 0  # no drafter
    assert "tree SI needs a drafter" in capsys.readouterr().err


def test_a_tree_law_that_is_not_one_is_named_in_every_engine():
    from simspec import simulate

    w = Workload(PoissonArrivals(rate=5.0), prompt_len=16, output_len=8, requests=3)
    with pytest.raises(InvalidParameterError, match="must be a tree acceptance law"):
        serve(w, ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), algorithms=("tree",),
              tree=TokenTree.chain(2), tree_acceptance=0.5)
    s = Scenario(ConstantLatency(30.0), ConstantLatency(3.0), IIDAcceptance(0.7), tokens=20)
    with pytest.raises(InvalidParameterError, match="must be a tree acceptance law"):
        simulate(s, "dsi", replications=1, tree=TokenTree.chain(2), tree_acceptance="0.5")
