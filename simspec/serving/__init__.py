"""Speculative decoding under load: request arrivals, continuous batching, KV cache, SI vs plain decoding.

``serve(workload, target, drafter, acceptance, ...)`` runs the same requests with
non-SI and SI, and on request tree SI (:mod:`simspec.serving.engine`) and DSI on a
shared pool of batching servers (:mod:`simspec.serving.dsi`), through a discrete-event
serving engine, and returns a :class:`ServingResult`: TTFT, TPOT and end-to-end percentiles,
throughput, goodput, GPU-seconds per token, with intervals over replications,
the speedups, and one record per request.  ``docs/guides/serving.md`` is the guide.
"""

from .batching import Batching, BatchSizeLookahead
from .curves import BestKTable, LoadCurve, best_k_by_batch, load_curve
from .serve import SERVING_METRICS, SLO, ServingResult, serve
from .workload import (
    BurstyArrivals,
    EmpiricalLengths,
    PoissonArrivals,
    RequestTable,
    RequestTrace,
    UniformLengths,
    Workload,
    load_request_trace,
)

__all__ = [
    "serve",
    "ServingResult",
    "load_curve",
    "LoadCurve",
    "best_k_by_batch",
    "BestKTable",
    "SLO",
    "SERVING_METRICS",
    "Batching",
    "BatchSizeLookahead",
    "Workload",
    "PoissonArrivals",
    "BurstyArrivals",
    "UniformLengths",
    "EmpiricalLengths",
    "RequestTable",
    "RequestTrace",
    "load_request_trace",
]
