"""The discrete-event engine: SI and DSI on simulated servers, in virtual time (``simpy``).

Where the closed forms and the Monte Carlo assume unlimited servers, constant
latencies and free communication, this engine models a pool of ``N`` target
servers with a queue, cancellation, stochastic and context-dependent latencies,
and overheads (messages, KV-cache sync, task start-up).  With unlimited servers,
constant latencies and zero overheads it reproduces the Monte Carlo run by run.
"""

from .config import Overheads
from .runner import RunRecord, SimulationResult, run_once, simulate
from .trace import EventLog, read_jsonl, write_jsonl

__all__ = ["simulate", "run_once", "Overheads", "RunRecord", "SimulationResult", "EventLog", "read_jsonl",
           "write_jsonl"]
