"""Measured forward latencies of a causal LM: prefill and KV-cached decode forwards over a grid.

The grid: a **prefill** cell per context length ``c`` (a forward of ``c`` prompt tokens on
an empty cache: ``width = c``, ``context_len = 0``), and a **decode** cell per width ``w``
and context ``c`` (a forward of ``w`` new tokens on a KV cache that holds exactly ``c``
tokens — a verification of ``w − 1`` drafts is a decode forward of width ``w``).  The cache
of each context is built once by a prefill of ``c`` tokens; every timed decode forward runs
on a fresh copy of it (copied outside the timed region), so it sees exactly ``c`` cached
tokens however often the cell repeats.  With several ``batches``, every cell is measured at
every batch size ``B``: one forward over ``B`` sequences (different random tokens, equal
lengths, so nothing is padded), each with its own cache of ``c`` tokens; the rows carry
``batch = B`` (:func:`simspec.load_batch_profile` reads them all).

How the timing stays honest:

* **cells interleaved** — the run is ``warmup + repeats`` sweeps, and every sweep times each
  cell once, in an order shuffled by a seeded generator; a slow drift of the machine
  (thermal throttling, another process) spreads over all cells instead of faking a trend
  along the grid, as timing one cell after another would;
* the first ``warmup`` sweeps are thrown away (allocator warm-up, kernel selection);
* per cell the median and the quartiles of the ``repeats`` kept forwards are reported;
* ``time.perf_counter`` on a CPU; on a GPU, CUDA events around the forward and a
  ``synchronize`` after it (GPU work is asynchronous; a host clock would time the launch);
* torch's thread count, dtype, device and the torch/transformers versions go into each row.

The rows are the latency profile CSV format (``docs/guides/real-models.md``): columns
:data:`PROFILE_COLUMNS`, ``#`` provenance lines above the header.

>>> from simspec.real import tiny_model
>>> rows = measure_profile(tiny_model(layers=1, hidden=32), widths=[1, 2], contexts=[8], repeats=3,
...                        warmup=1, progress=False)
>>> [(r["phase"], r["width"], r["context_len"], r["n"]) for r in rows]
[('prefill', 8, 0, 3), ('decode', 1, 8, 3), ('decode', 2, 8, 3)]
>>> all(r["p25_ms"] <= r["median_ms"] <= r["p75_ms"] for r in rows)
True
"""

from __future__ import annotations

import copy
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .._checks import check_rng, int_at_least
from .._progress import progress_bar as _progress_bar
from ..errors import InvalidParameterError
from ..profiles import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from . import require_models
from .models import LoadedModel, as_loaded

__all__ = ["PROFILE_COLUMNS", "measure_profile", "write_profile_rows", "versions", "forward", "cache_of",
           "progress_bar"]

#: The latency profile CSV's columns (:mod:`simspec.profiles`: required, then optional).
PROFILE_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

Cell = tuple[str, int, int, int]  # (phase, width, context_len, batch)


def versions() -> dict[str, str]:
    """simspec, torch and transformers versions (the ones that exist)."""
    from .. import __version__

    out = {"simspec": __version__}
    for name in ("torch", "transformers"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except ImportError:
                continue
        out[name] = getattr(mod, "__version__", "?")
    return out


def _cache_kwarg(model) -> str:
    """The name of the KV-cache argument of ``model.forward``: ``cache`` (transformers 5) or ``past_key_values``."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_of(output) -> Any:
    """The KV cache a forward returned (``output.cache`` in transformers 5, ``past_key_values`` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def forward(model, ids, cache=None, *, kwarg: str | None = None):
    """One forward of token ids ``ids`` (shape ``1 × w``) on ``cache`` (``None``: empty), keeping the cache."""
    kwargs = {"use_cache": True}
    if cache is not None:
        kwargs[kwarg or _cache_kwarg(model)] = cache
    return model(input_ids=ids, **kwargs)


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr when ``enabled`` and stderr is a terminal; else a do-nothing stand-in."""
    return _progress_bar(total, desc, enabled, unit="fwd")


def _timer(device) -> Callable[[Callable[[], Any]], float]:
    import torch

    if device.type == "cuda":
        def time_ms(fn):
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return float(start.elapsed_time(end))
    else:
        def time_ms(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
    return time_ms


def _grid(name: str, values: Iterable[int], low: int) -> list[int]:
    try:
        out = sorted({int_at_least(name, v, low) for v in values})
    except TypeError:
        raise InvalidParameterError(f"{name} must be a list of integers >= {low}, got {values!r}") from None
    if not out:
        raise InvalidParameterError(f"{name} must not be empty")
    return out


def measure_profile(model: Any, *, widths: Iterable[int] = range(1, 17), contexts: Iterable[int] = (32, 128, 512),
                    repeats: int = 7, warmup: int = 2, device: str = "cpu", progress: bool = True,
                    prefill: bool = True, threads: int | None = None, rng: Any = 0, name: str | None = None,
                    out: str | os.PathLike | None = None, batches: Iterable[int] = (1,)) -> list[dict[str, Any]]:
    """Time prefill and decode forwards of ``model`` over ``widths`` × ``contexts`` (× ``batches``); one row per cell.

    ``model``: a :class:`~simspec.real.LoadedModel`, a spec for :func:`~simspec.real.load_model`
    or a torch causal LM.  ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (the model is moved
    there).  ``threads`` sets torch's CPU thread count for the run (restored afterwards).
    ``rng`` seeds the input tokens and the order of the cells.  ``out`` writes the profile
    CSV (atomically, with provenance).  ``batches``: the batch sizes to measure every cell at
    (default: 1 only).  Rows are dicts keyed by :data:`PROFILE_COLUMNS`, batch by batch.
    """
    require_models()
    import torch
    import transformers

    loaded = as_loaded(model, name=name)
    widths = _grid("widths", widths, 1)
    contexts = _grid("contexts", contexts, 1)
    batches = _grid("batches", batches, 1)
    repeats = int_at_least("repeats", repeats, 1)
    warmup = int_at_least("warmup", warmup, 0)
    rng = np.random.default_rng(check_rng(rng))
    limit = getattr(loaded.model.config, "max_position_embeddings", None)
    if limit and max(contexts) + max(widths) > limit:
        raise InvalidParameterError(
            f"context {max(contexts)} + width {max(widths)} exceeds the model's {limit} positions; "
            "lower contexts or widths")
    if out is not None:
        check_output_path(out, ".csv")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InvalidParameterError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device 'cuda' asked for, but torch sees no CUDA GPU; use device='cpu'")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int_at_least("threads", threads, 1))
    try:
        lm = loaded.model.to(dev).eval()
        kwarg = _cache_kwarg(lm)
        vocab = loaded.vocab_size
        ids = torch.as_tensor(rng.integers(0, vocab, size=(max(batches), max(contexts) + max(widths))), device=dev)
        cells: list[Cell] = [cell for b in batches for cell in
                             ([("prefill", c, 0, b) for c in contexts] if prefill else [])
                             + [("decode", w, c, b) for w in widths for c in contexts]]
        time_ms = _timer(dev)
        samples: dict[Cell, list[float]] = {cell: [] for cell in cells}
        bar = progress_bar((warmup + repeats) * len(cells), f"measure {loaded.name}", progress)
        with torch.inference_mode():
            base = {(b, c): cache_of(forward(lm, ids[:b, :c], kwarg=kwarg)) for b in batches for c in contexts}
            for sweep in range(warmup + repeats):
                for i in rng.permutation(len(cells)):
                    phase, width, ctx, b = cells[i]
                    if phase == "prefill":
                        x, cache = ids[:b, :width], None
                    else:
                        x, cache = ids[:b, ctx:ctx + width], copy.deepcopy(base[(b, ctx)])
                        if cache.get_seq_length() != ctx:  # pragma: no cover - a cache that does not copy
                            raise RuntimeError(f"the copied cache holds {cache.get_seq_length()} tokens, not {ctx}")
                    ms = time_ms(lambda: forward(lm, x, cache, kwarg=kwarg))
                    if sweep >= warmup:
                        samples[cells[i]].append(ms)
                    bar.update()
        bar.close()
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
    common = {"device": dev.type, "dtype": loaded.dtype, "threads": used_threads,
              "torch_version": torch.__version__, "transformers_version": transformers.__version__}
    rows = []
    for cell in cells:
        p25, med, p75 = np.percentile(samples[cell], [25, 50, 75])
        rows.append({"model": loaded.name, "phase": cell[0], "width": cell[1], "context_len": cell[2],
                     "median_ms": float(med), "p25_ms": float(p25), "p75_ms": float(p75), "n": repeats,
                     "batch": cell[3], **common})
    if out is not None:
        write_profile_rows(out, rows, profile_provenance(loaded, dev, repeats, warmup, used_threads, batches))
    return rows


def profile_provenance(loaded: LoadedModel, dev, repeats: int, warmup: int, threads: int,
                       batches: Sequence[int] = (1,)) -> dict[str, Any]:
    """What a profile's ``#`` lines say: the model, the machine, the protocol, the versions, the date."""
    import torch

    machine = platform.processor() or platform.machine()
    if dev.type == "cuda":
        machine = torch.cuda.get_device_name(dev)
    return {
        "source": f"measured by simspec measure_profile on {machine} ({platform.system()})",
        "model": f"{loaded.name} ({loaded.source})" if loaded.source else loaded.name,
        "protocol": (f"cells interleaved: {warmup} warm-up + {repeats} timed sweeps, each over every cell in a "
                     "seeded random order; median and quartiles of the timed forwards; decode forwards on a "
                     "fresh copy of a KV cache of exactly context_len tokens"
                     + ("" if list(batches) == [1] else
                        f"; every cell at batch sizes {', '.join(map(str, batches))} (one forward over that many "
                        "sequences of equal length, each with its own cache)")),
        "timer": "CUDA events + synchronize" if dev.type == "cuda" else "time.perf_counter",
        "threads": threads,
        "versions": ", ".join(f"{k} {v}" for k, v in versions().items()) + f", python {platform.python_version()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def check_output_path(path: str | os.PathLike, suffix: str, flag: str = "out") -> Path:
    """``path`` as a Path if a file can be written there: its folder exists and is writable, it ends in ``suffix``."""
    path = Path(path)
    if path.is_dir():
        raise InvalidParameterError(f"{flag} {path} is a folder; give a file name ending in {suffix}")
    if path.suffix.lower() != suffix:
        raise InvalidParameterError(f"{flag} {path} must end in {suffix}")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise InvalidParameterError(f"{flag} {path}: the folder {parent} does not exist; create it first or fix "
                                    "the path")
    if not os.access(parent, os.W_OK):
        raise InvalidParameterError(f"{flag} {path}: the folder {parent} is not writable")
    return path


def write_profile_rows(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]],
                       provenance: Mapping[str, Any]) -> Path:
    """Write ``rows`` as a latency profile CSV, atomically, with ``# key: value`` provenance lines.

    The one writer of the format is :func:`simspec.profiles.write_profile` (which validates
    the text with the reader before writing it); this checks the path first (its folder
    exists, it ends in ``.csv``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = write_profile_rows(p, [{"model": "m", "phase": "decode", "width": 1, "context_len": 32,
    ...                             "median_ms": 1.5}], {"source": "a doctest"})
    >>> print(p.read_text())
    # source: a doctest
    model,phase,width,context_len,median_ms
    m,decode,1,32,1.5
    <BLANKLINE>
    """
    from ..profiles import write_profile

    return write_profile(check_output_path(path, ".csv"), rows, provenance)
