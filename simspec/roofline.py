"""A roofline model of a forward's time, from the model's shape and the hardware's facts.

A transformer's forward over a batch reads every weight once, reads the KV cache of
every sequence's context, writes the KV of the new tokens, and does about two FLOPs
per weight per new token plus its attention.  The hardware moves bytes at its memory
bandwidth and does FLOPs at its peak: whichever takes longer sets the time
(Williams, Waterman and Patterson, "Roofline", CACM 2009).  At batch 1 a decode is
memory-bound (a few FLOPs per byte); as the batch's new tokens grow, the FLOPs catch
up with the bytes and the forward turns compute-bound.  :class:`RooflineLatency`
implements :class:`~simspec.batch_latency.BatchLatencyModel`:

    time = overhead_ms + per_layer_overhead_ms · layers
           + max(bytes / (bandwidth · efficiency), FLOPs / (peak · compute_efficiency))
    bytes = weight bytes + KV bytes per token · (Σ contexts + Σ new tokens)
    FLOPs = 2 · params · Σ new tokens + 4 · layers · heads · head_dim · Σ (n c + n (n + 1)/2)

(``theory/roofline.md`` derives it.)  No kernel reaches a datasheet's peak and every
framework spends time outside its kernels, so the efficiencies and overheads are
fitted to a measured profile (:func:`fit_roofline`) — then the model answers for a
GPU, a batch or a model that was never measured.

>>> from simspec import RooflineLatency, ModelSpec, hardware_preset
>>> m = RooflineLatency(ModelSpec.preset("llama-3-8b"), hardware_preset("H100"), efficiency=0.8)
>>> round(m.step_ms([1], [0]), 2)               # one decode: 15 GB of weights at 0.8 x 3.35 TB/s
5.6
>>> round(m.step_ms([1] * 64, [512] * 64), 2)   # 64 sequences on 512 tokens: memory-bound, KV reads add up
7.21
>>> round(m.crossover_batch(context_len=0), 1)  # decodes per step on empty caches where compute takes over
296.1
>>> m.crossover_batch(context_len=512)          # at 512 tokens of context the KV reads outgrow the FLOPs
inf
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from ._checks import lookup_preset, finite_nonneg, int_at_least, positive
from .batch_latency import check_step
from .errors import InvalidParameterError
from .hardware import Hardware, hardware_preset
from .latency import LatencyBase, Phase

__all__ = ["ModelSpec", "MODELS", "RooflineLatency", "RooflineSingle", "RooflineFit", "FitCell", "fit_roofline",
           "score", "FIT_PARAMETERS"]

_DTYPE_BYTES = {"float64": 8, "float32": 4, "float": 4, "fp32": 4, "float16": 2, "fp16": 2, "half": 2,
                "bfloat16": 2, "bf16": 2, "int8": 1, "fp8": 1, "float8": 1}
#: model types whose MLP has two matrices (up, down); every other type is gated (gate, up, down: Llama's SwiGLU)
_NON_GATED = {"gpt2", "gpt_bigcode", "gpt_neox", "gptj", "opt", "falcon", "bloom", "starcoder2", "phi"}
#: model types that learn a position embedding table (n_positions x hidden)
_LEARNED_POSITIONS = {"gpt2", "gpt_bigcode", "opt"}
#: model types whose configs leave tie_word_embeddings out because their class ties by default
_TIED_BY_DEFAULT = {"gpt2", "gpt_bigcode", "gemma", "gemma2", "gemma3", "gemma3_text", "starcoder2"}


def _cfg(cfg: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = cfg.get(name) if isinstance(cfg, Mapping) else getattr(cfg, name, None)
        if value is not None:
            return value
    return default


@dataclass(frozen=True)
class ModelSpec:
    """The shape of a decoder-only transformer: what a roofline needs to price its forwards.

    ``params``: all parameters; ``layers``, ``hidden``; ``heads`` query heads and
    ``kv_heads`` key/value heads of ``head_dim`` each (``heads`` defaults to
    ``hidden // head_dim``); ``vocab`` and ``tied_embeddings`` say whether the input
    embedding is a table of its own (untied: gathered a row per token, neither read
    whole nor multiplied, so left out of :attr:`matmul_params`); ``bytes_per_param``
    of the weights (2: bf16/fp16, 4: fp32, 0.5: 4-bit), ``kv_bytes_per_value`` of the
    KV cache (``None``: the weights').  Build one with :meth:`from_config`,
    :meth:`from_params` or :meth:`preset`.

    >>> s = ModelSpec.preset("vicuna-13b")
    >>> s.params, s.kv_bytes_per_token, round(s.weight_bytes / 1e9, 2)
    (13015864320, 819200.0, 25.7)
    """

    name: str
    params: int
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    heads: int = 0
    vocab: int = 0
    tied_embeddings: bool = True
    bytes_per_param: float = 2.0
    kv_bytes_per_value: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidParameterError(f"a ModelSpec needs a name, got {self.name!r}")
        p = self.params
        if isinstance(p, float) and math.isfinite(p) and p >= 1:
            p = int(round(p))
        object.__setattr__(self, "params", int_at_least(
            "params", p, 1, "the number of parameters, e.g. 8_030_261_248 (ModelSpec.from_params(8e9) guesses "
                            "the rest of a Llama-shaped model)"))
        for name in ("layers", "hidden", "kv_heads", "head_dim"):
            object.__setattr__(self, name, int_at_least(name, getattr(self, name), 1))
        heads = self.heads or max(1, self.hidden // self.head_dim)
        object.__setattr__(self, "heads", int_at_least("heads", heads, 1))
        if self.kv_heads > self.heads:
            raise InvalidParameterError(f"kv_heads ({self.kv_heads}) must be <= heads ({self.heads}): key/value "
                                        "heads are shared by groups of query heads, never more numerous")
        object.__setattr__(self, "vocab", int_at_least("vocab", self.vocab, 0, "0 means unknown"))
        object.__setattr__(self, "bytes_per_param", positive(
            "bytes_per_param", self.bytes_per_param, "2 for bf16/fp16 weights, 4 for fp32, 0.5 for 4-bit"))
        if self.kv_bytes_per_value is not None:  # None: the weights' bytes, also after replace(bytes_per_param=...)
            object.__setattr__(self, "kv_bytes_per_value", positive(
                "kv_bytes_per_value", self.kv_bytes_per_value, "bytes of one cached key or value element: 2 for a "
                                                               "bf16 cache"))
        if self.matmul_params < 1:
            raise InvalidParameterError(
                f"{self.name}: the untied embedding table ({self.vocab} x {self.hidden} = {self.vocab * self.hidden} "
                f"parameters) is not smaller than params ({self.params}); check params, vocab and tied_embeddings")

    # -- derived ---------------------------------------------------------------------------------------
    @property
    def matmul_params(self) -> int:
        """The parameters a forward reads whole and multiplies: all but an untied input embedding table."""
        return self.params - (0 if self.tied_embeddings else self.vocab * self.hidden)

    @property
    def weight_bytes(self) -> float:
        """Bytes of weights one forward reads: ``matmul_params · bytes_per_param``."""
        return self.matmul_params * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token holds: ``2 (key and value) · layers · kv_heads · head_dim · kv_bytes_per_value``."""
        kv = self.bytes_per_param if self.kv_bytes_per_value is None else self.kv_bytes_per_value
        return 2 * self.layers * self.kv_heads * self.head_dim * kv

    @property
    def attention_width(self) -> int:
        """``layers · heads · head_dim``: attention does ``4 ·`` this FLOPs per (query, key) pair."""
        return self.layers * self.heads * self.head_dim

    def replace(self, **changes) -> "ModelSpec":
        """A copy with some fields changed (validated again): ``spec.replace(bytes_per_param=4)``."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        return (f"ModelSpec({self.name!r}, {self.params / 1e9:.3g}B params, {self.layers} layers, hidden "
                f"{self.hidden}, {self.heads}/{self.kv_heads} heads x {self.head_dim}, {self.bytes_per_param:g} "
                "bytes/param)")

    # -- constructors ----------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any, *, name: str | None = None, params: int | None = None,
                    bytes_per_param: float | None = None, source: str = "") -> "ModelSpec":
        """The spec of a transformers model config: a dict (a ``config.json`` read with ``json.load``) or a config object.

        Parameters are counted from the shapes (embeddings; per layer the query, key,
        value and output projections, the MLP — gated with three matrices, or two for
        GPT-2-style types — and the norms; a learned position table) unless ``params`` is
        given.  Understands Llama-style keys (``hidden_size``, ``num_hidden_layers``,
        ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``,
        ``intermediate_size``) and GPT-2-style ones (``n_embd``, ``n_layer``, ``n_head``,
        ``n_inner``, ``multi_query``); a multimodal config's ``text_config`` is used.
        ``bytes_per_param`` defaults to the config's ``torch_dtype`` (2 when absent).
        Nothing is downloaded.

        >>> cfg = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
        ...        "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 8192, "vocab_size": 128256,
        ...        "tie_word_embeddings": True, "torch_dtype": "bfloat16"}
        >>> ModelSpec.from_config(cfg, name="llama-3.2-1b").params
        1235814400
        """
        text = _cfg(config, "text_config")
        if text is not None and _cfg(config, "hidden_size", "n_embd", "d_model") is None:
            config = text
        model_type = str(_cfg(config, "model_type", default="") or "")
        hidden = _cfg(config, "hidden_size", "n_embd", "d_model")
        layers = _cfg(config, "num_hidden_layers", "n_layer", "num_layers")
        heads = _cfg(config, "num_attention_heads", "n_head", "num_heads")
        missing = [k for k, v in (("hidden_size", hidden), ("num_hidden_layers", layers),
                                  ("num_attention_heads", heads)) if v is None]
        if missing:
            raise InvalidParameterError(
                f"the config lacks {', '.join(missing)} (or their GPT-2 names n_embd, n_layer, n_head); pass a "
                "transformers config dict or object, e.g. json.load(open('config.json'))")
        hidden, layers, heads = (int_at_least(n, v, 1) for n, v in (("hidden_size", hidden),
                                                                    ("num_hidden_layers", layers),
                                                                    ("num_attention_heads", heads)))
        head_dim = int(_cfg(config, "head_dim", default=0) or hidden // heads)
        kv_heads = _cfg(config, "num_key_value_heads", "num_kv_heads")
        if kv_heads is None:
            kv_heads = 1 if _cfg(config, "multi_query", default=False) else heads
        kv_heads = int(kv_heads)
        inter = int(_cfg(config, "intermediate_size", "n_inner", "ffn_dim", default=0) or 4 * hidden)
        vocab = int(_cfg(config, "vocab_size", default=0) or 0)
        tied = _cfg(config, "tie_word_embeddings")
        tied = (model_type in _TIED_BY_DEFAULT) if tied is None else bool(tied)
        if bytes_per_param is None:
            dtype = _cfg(config, "torch_dtype", "dtype", default="bfloat16")
            dtype = str(dtype).removeprefix("torch.").lower()
            if dtype not in _DTYPE_BYTES:
                raise InvalidParameterError(f"unknown dtype {dtype!r} in the config; pass bytes_per_param=...")
            bytes_per_param = _DTYPE_BYTES[dtype]
        if params is None:
            attn = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
            mlp = (2 if model_type in _NON_GATED else 3) * hidden * inter
            if model_type.startswith("gemma3"):
                norms = 4 * hidden + 2 * head_dim  # four norms around the blocks, query and key norms
            elif model_type.startswith("gemma2"):
                norms = 4 * hidden
            elif model_type in _NON_GATED:
                norms = 4 * hidden  # two LayerNorms with biases
            else:
                norms = 2 * hidden
            params = layers * (attn + mlp + norms) + vocab * hidden * (1 if tied else 2) + hidden
            if model_type in _LEARNED_POSITIONS:
                params += int(_cfg(config, "n_positions", "max_position_embeddings", default=0)) * hidden
        label = name or str(_cfg(config, "_name_or_path", "name_or_path", default="") or model_type or "model")
        return cls(label, params, layers, hidden, kv_heads, head_dim, heads, vocab, tied, bytes_per_param,
                   source=source or "transformers config")

    @classmethod
    def from_params(cls, n: float, *, bytes_per_param: float = 2.0, name: str | None = None) -> "ModelSpec":
        """A Llama-shaped model of about ``n`` parameters, its shape interpolated from real configs.

        The table (:data:`LLAMA_SHAPES`): SmolLM2-135M and -360M, Llama-3.2-1B and -3B,
        Llama-3.1-8B, -70B and -405B — one lineage of grouped-query Llama shapes.  Layers,
        hidden size and KV width (``kv_heads · head_dim``) are each piecewise linear in
        ``log n`` on their logarithms between neighbours (extrapolated along the end
        segments outside 135M..405B); ``head_dim`` is 64 below a hidden size of 2560 and 128
        from there, as in the table; heads and KV heads are rounded.  ``vocab`` is left
        unknown, so all ``n`` parameters count as read by every forward.

        >>> ModelSpec.from_params(8e9)
        ModelSpec('llama-shaped-8B', 8B params, 32 layers, hidden 4096, 32/8 heads x 128, 2 bytes/param)
        """
        try:
            x = float(n)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"n must be a number of parameters, got {n!r}") from None
        if not (math.isfinite(x) and x >= 1e6):
            raise InvalidParameterError(f"n must be a number of parameters >= 1e6 (the table starts at 135M), got {n!r}")
        logs = np.log([row[0] for row in LLAMA_SHAPES])
        lx = math.log(x)
        i = int(np.clip(np.searchsorted(logs, lx) - 1, 0, len(logs) - 2))
        t = (lx - logs[i]) / (logs[i + 1] - logs[i])

        def interp(col: int) -> float:
            a, b = math.log(LLAMA_SHAPES[i][col]), math.log(LLAMA_SHAPES[i + 1][col])
            return math.exp(a + t * (b - a))

        layers = max(1, round(interp(1)))
        hidden = interp(2)
        head_dim = 64 if hidden < 2560 else 128
        heads = max(1, round(hidden / head_dim))
        kv_heads = int(np.clip(round(interp(3) / head_dim), 1, heads))
        label = name or f"llama-shaped-{x / 1e9:.3g}B"
        return cls(label, int(round(x)), layers, heads * head_dim, kv_heads, head_dim, heads, 0, True,
                   bytes_per_param, source="ModelSpec.from_params: interpolated in log-parameters between "
                                           "Llama-family configs (simspec.roofline.LLAMA_SHAPES)")

    @classmethod
    def preset(cls, name: str, *, bytes_per_param: float | None = None) -> "ModelSpec":
        """The spec of a model simspec uses (:data:`MODELS`; case and separators ignored), optionally re-typed.

        >>> ModelSpec.preset("SmolLM2-135M", bytes_per_param=4).weight_bytes   # float32 on a CPU
        538060032.0
        """
        if isinstance(name, ModelSpec):
            spec = name
        else:
            spec = lookup_preset(str(name).partition("@")[0], MODELS, "model",
                                 "ModelSpec.from_config(config_dict) for any transformers model, "
                                 "ModelSpec.from_params(n) for a Llama-shaped guess")
        return spec if bytes_per_param is None else spec.replace(bytes_per_param=bytes_per_param)




#: ``(params, layers, hidden, kv_heads · head_dim)`` of Llama-family configs, for :meth:`ModelSpec.from_params`
#: (config.json of HuggingFaceTB/SmolLM2-135M and -360M, meta-llama/Llama-3.2-1B and -3B, Llama-3.1-8B, -70B, -405B).
LLAMA_SHAPES: tuple[tuple[float, int, int, int], ...] = (
    (134_515_008, 30, 576, 3 * 64),
    (361_821_120, 32, 960, 5 * 64),
    (1_235_814_400, 16, 2048, 8 * 64),
    (3_212_749_824, 28, 3072, 8 * 128),
    (8_030_261_248, 32, 4096, 8 * 128),
    (70_553_706_496, 80, 8192, 8 * 128),
    (405_853_388_800, 126, 16384, 8 * 128),
)


def _llama(name, layers, hidden, heads, kv_heads, head_dim, inter, vocab, tied, source, model_type="llama",
           **extra) -> ModelSpec:
    cfg = {"model_type": model_type, "hidden_size": hidden, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim,
           "intermediate_size": inter, "vocab_size": vocab, "tie_word_embeddings": tied, **extra}
    return ModelSpec.from_config(cfg, name=name, source=source)


_HF = "config.json of the Hugging Face repository "
#: Model presets (bf16 weights and cache; :meth:`ModelSpec.preset` re-types them), parameters counted from
#: each config by :meth:`ModelSpec.from_config`.
MODELS: dict[str, ModelSpec] = {s.name: s for s in (
    _llama("vicuna-7b", 32, 4096, 32, 32, 128, 11008, 32000, False, _HF + "lmsys/vicuna-7b-v1.3 (Llama 7B shape)"),
    _llama("vicuna-13b", 40, 5120, 40, 40, 128, 13824, 32000, False, _HF + "lmsys/vicuna-13b-v1.3 (Llama 13B shape)"),
    _llama("vicuna-68m", 2, 768, 12, 12, 64, 3072, 32000, False, _HF + "double7/vicuna-68m (from JackFram/llama-68m)"),
    _llama("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, False, _HF + "meta-llama/Meta-Llama-3-8B"),
    _llama("llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, True, _HF + "meta-llama/Llama-3.2-1B"),
    _llama("smollm2-135m", 30, 576, 9, 3, 64, 1536, 49152, True,
           _HF + "HuggingFaceTB/SmolLM2-135M; the parameter count equals the tensors of the GGUF file simspec's "
                 "built-in smollm2-135m loads (134,515,008)"),
    _llama("gemma-3-270m", 18, 640, 4, 1, 256, 2048, 262144, True,
           _HF + "google/gemma-3-270m; the parameter count equals the tensors of the GGUF file simspec's built-in "
                 "gemma3-270m loads (268,098,176). Its sliding-window layers are priced as full attention",
           model_type="gemma3_text"),
    _llama("phi3-14b", 40, 5120, 40, 10, 128, 17920, 32064, False, _HF + "microsoft/Phi-3-medium-4k-instruct",
           model_type="phi3"),
    _llama("phi3-4b", 32, 3072, 32, 32, 96, 8192, 32064, False, _HF + "microsoft/Phi-3-mini-4k-instruct",
           model_type="phi3"),
    ModelSpec.from_config({"model_type": "gpt_bigcode", "n_embd": 6144, "n_layer": 40, "n_head": 48,
                           "n_inner": 24576, "multi_query": True, "vocab_size": 49152, "n_positions": 8192},
                          name="starcoder-15b", source=_HF + "bigcode/starcoder (GPTBigCode, multi-query attention)"),
    ModelSpec.from_config({"model_type": "gpt_bigcode", "n_embd": 768, "n_layer": 20, "n_head": 12,
                           "n_inner": 3072, "multi_query": True, "vocab_size": 49152, "n_positions": 8192},
                          name="starcoder-168m",
                          source=_HF + "bigcode/tiny_starcoder_py (164M parameters; the DSI paper's StarCoder-168M)"),
)}


# -- the latency model -------------------------------------------------------------------------------------------


def _efficiency(name: str, value: Any) -> float:
    x = positive(name, value, "the fraction of the hardware's peak a forward achieves, in (0, 1]")
    if x > 1:
        raise InvalidParameterError(
            f"{name} must be in (0, 1], got {value!r}: it is the fraction of the hardware's peak that forwards "
            "achieve, and no kernel beats the peak; if measured forwards are faster than the roofline allows, the "
            "Hardware's bandwidth or peak is too low (check GB/s vs GiB/s and dense vs sparse TFLOP/s)")
    return x


def _check_phase(phase: Any) -> None:
    if phase not in ("decode", "prefill"):
        raise InvalidParameterError(f"phase must be 'decode' or 'prefill', got {phase!r}")


@dataclass(frozen=True)
class RooflineLatency:
    """Batch latency from a roofline: fixed overheads plus the slower of moving the bytes and doing the FLOPs.

    ``model``: a :class:`ModelSpec` (or a preset's name); ``hardware``: a
    :class:`~simspec.Hardware` (or a preset's name).  ``efficiency`` scales the memory
    bandwidth, ``compute_efficiency`` the peak FLOP/s (default: ``efficiency``); both in
    (0, 1].  ``overhead_ms`` is paid once per forward, ``per_layer_overhead_ms`` once per
    layer (kernel launches and framework code, which dominate small models' forwards).
    The defaults, ``1`` and ``0``, give the pure roofline: a lower bound on any real
    forward.  Refuses a model whose weights do not fit in the hardware's memory.
    ``phase`` does not change the price: a prefill is priced by its tokens like any
    forward.
    """

    model: ModelSpec
    hardware: Hardware
    efficiency: float = 1.0
    compute_efficiency: float | None = None
    overhead_ms: float = 0.0
    per_layer_overhead_ms: float = 0.0

    def __post_init__(self) -> None:
        model = self.model if isinstance(self.model, ModelSpec) else ModelSpec.preset(self.model)
        hardware = hardware_preset(self.hardware)
        if not isinstance(model, ModelSpec):
            raise InvalidParameterError(f"model must be a ModelSpec or a preset's name, got {self.model!r}")
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "hardware", hardware)
        object.__setattr__(self, "efficiency", _efficiency("efficiency", self.efficiency))
        ce = self.efficiency if self.compute_efficiency is None else self.compute_efficiency
        object.__setattr__(self, "compute_efficiency", _efficiency("compute_efficiency", ce))
        object.__setattr__(self, "overhead_ms", finite_nonneg("overhead_ms", self.overhead_ms,
                                                              "a time in ms paid once per forward"))
        object.__setattr__(self, "per_layer_overhead_ms", finite_nonneg(
            "per_layer_overhead_ms", self.per_layer_overhead_ms, "a time in ms paid once per layer per forward"))
        if model.weight_bytes > hardware.memory_bytes:
            raise InvalidParameterError(
                f"{model.name}'s weights ({model.weight_bytes / 2**30:.1f} GiB at {model.bytes_per_param:g} bytes per "
                f"parameter) do not fit in the {hardware.memory_GiB:g} GiB of {hardware.name}; choose hardware with "
                "more memory, fewer bytes per parameter (model.replace(bytes_per_param=1)), or describe several "
                "GPUs as one Hardware")

    # -- the formula ---------------------------------------------------------------------------------------
    @property
    def fixed_ms(self) -> float:
        """What every forward pays outside the roofline: ``overhead_ms + per_layer_overhead_ms · layers``."""
        return self.overhead_ms + self.per_layer_overhead_ms * self.model.layers

    def _bounds(self, tokens, context_sum, attention_pairs):
        """``(memory ms, compute ms)`` at efficiency 1 for a step's totals (numpy-vectorised)."""
        m = self.model
        nbytes = m.weight_bytes + m.kv_bytes_per_token * (np.asarray(context_sum, dtype=float) + tokens)
        flops = 2.0 * m.matmul_params * np.asarray(tokens, dtype=float) + 4.0 * m.attention_width * np.asarray(
            attention_pairs, dtype=float)
        return nbytes / self.hardware.bytes_per_s * 1e3, flops / self.hardware.flops_per_s * 1e3

    def _time(self, tokens, context_sum, attention_pairs):
        mem, comp = self._bounds(tokens, context_sum, attention_pairs)
        out = self.fixed_ms + np.maximum(mem / self.efficiency, comp / self.compute_efficiency)
        return float(out) if np.ndim(out) == 0 else out

    @staticmethod
    def _totals(n: np.ndarray, c: np.ndarray) -> tuple[int, int, float]:
        return int(n.sum()), int(c.sum()), float(np.sum(n * c + n * (n + 1) / 2.0))

    def breakdown(self, new_tokens, context_lens) -> dict[str, float]:
        """The step's terms: ``bytes``, ``flops``, ``memory_ms``, ``compute_ms`` (with efficiencies), ``fixed_ms``,
        ``bound`` (``"memory"`` or ``"compute"``) and ``step_ms``.

        >>> RooflineLatency("vicuna-7b", "A100-80GB").breakdown([1], [0])["bound"]
        'memory'
        """
        n, c = check_step(new_tokens, context_lens)
        tokens, ctx, pairs = self._totals(n, c)
        mem, comp = self._bounds(tokens, ctx, pairs)
        mem, comp = float(mem) / self.efficiency, float(comp) / self.compute_efficiency
        m = self.model
        return {"bytes": m.weight_bytes + m.kv_bytes_per_token * (ctx + tokens),
                "flops": 2.0 * m.matmul_params * tokens + 4.0 * m.attention_width * pairs,
                "memory_ms": mem, "compute_ms": comp, "fixed_ms": self.fixed_ms,
                "bound": "memory" if mem >= comp else "compute", "step_ms": self.fixed_ms + max(mem, comp)}

    # -- BatchLatencyModel ---------------------------------------------------------------------------------
    @property
    def deterministic(self) -> bool:
        return True

    def step_ms(self, new_tokens: Sequence[int], context_lens: Sequence[int], phase: Phase = "decode") -> float:
        """Time in ms of one forward in which sequence ``i`` adds ``new_tokens[i]`` tokens on ``context_lens[i]``."""
        _check_phase(phase)
        n, c = check_step(new_tokens, context_lens)
        return float(self._time(*self._totals(n, c)))

    def sample_step(self, rng: np.random.Generator, new_tokens, context_lens, phase: Phase = "decode") -> float:
        """``step_ms`` (a roofline is deterministic)."""
        return self.step_ms(new_tokens, context_lens, phase)

    def single(self, *, context_len: int | None = None, prompt_len: int = 1) -> "RooflineSingle":
        """The batch-1 view, a :class:`~simspec.LatencyModel` equal to ``step_ms`` of one sequence.

        ``context_len`` fixes the context of every forward (the view is then not
        ``context_dependent``, as the closed forms and the Monte Carlo need); ``prompt_len``
        is the prompt whose prefill ``ttft_ms`` prices (a prefill of unknown length).
        """
        return RooflineSingle(self, None if context_len is None else int_at_least("context_len", context_len, 0),
                              int_at_least("prompt_len", prompt_len, 1))

    # -- questions -----------------------------------------------------------------------------------------
    def crossover_batch(self, context_len: int = 0, new_tokens: int = 1) -> float:
        """The batch size at which a step of equal sequences (``new_tokens`` each on ``context_len``) turns compute-bound.

        Solves ``(W + B·b)/(bw·e) = B·f/(peak·e_c)`` for ``B``, with ``W`` the weight
        bytes and ``b``, ``f`` one sequence's KV bytes and FLOPs; ``inf`` when the KV
        bytes grow as fast as the FLOPs (long contexts: such steps stay memory-bound).
        """
        n = int_at_least("new_tokens", new_tokens, 1)
        c = int_at_least("context_len", context_len, 0)
        m, hw = self.model, self.hardware
        per_seq_bytes = m.kv_bytes_per_token * (c + n) / (hw.bytes_per_s * self.efficiency)
        per_seq_flops = (2.0 * m.matmul_params * n + 4.0 * m.attention_width * (n * c + n * (n + 1) / 2)) / (
            hw.flops_per_s * self.compute_efficiency)
        gain = per_seq_flops - per_seq_bytes
        return math.inf if gain <= 0 else m.weight_bytes / (hw.bytes_per_s * self.efficiency) / gain

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens of KV cache the hardware's memory holds besides the weights (activations not counted)."""
        return int((self.hardware.memory_bytes - self.model.weight_bytes) // self.model.kv_bytes_per_token)

    def replace(self, **changes) -> "RooflineLatency":
        """A copy with some fields changed: ``m.replace(hardware="H200")``."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        eff = f"efficiency={self.efficiency:.3g}"
        if self.compute_efficiency != self.efficiency:
            eff += f", compute_efficiency={self.compute_efficiency:.3g}"
        fixed = "".join(f", {k}={v:.3g}" for k, v in (("overhead_ms", self.overhead_ms),
                                                       ("per_layer_overhead_ms", self.per_layer_overhead_ms)) if v)
        return f"RooflineLatency({self.model.name!r} on {self.hardware.name!r}, {eff}{fixed})"


@dataclass(frozen=True)
class RooflineSingle(LatencyBase):
    """A :class:`RooflineLatency` at batch 1, as a :class:`~simspec.LatencyModel` (its ``single()``).

    ``forward(n_new, context_len, phase)`` is ``step_ms([n_new], [context_len])``,
    vectorised over ``n_new``; with ``fixed_context`` set, that context replaces the one
    asked for.  ``tpot_ms`` is one decode token at the fixed context (0 when none);
    ``ttft_ms`` the prefill of ``prompt_len`` tokens; a prefill of 0 tokens (unknown
    prompt) answers ``ttft_ms``.

    >>> one = RooflineLatency("vicuna-7b", "A100-80GB", efficiency=0.5).single()
    >>> one.forward([1, 8], 100) == [RooflineLatency("vicuna-7b", "A100-80GB", efficiency=0.5).step_ms([n], [100])
    ...                              for n in (1, 8)]
    array([ True,  True])
    """

    roofline: RooflineLatency
    fixed_context: int | None = None
    prompt_len: int = 1

    @property
    def tpot_ms(self) -> float:
        return float(self.forward(1, 0))

    @property
    def ttft_ms(self) -> float:
        return float(self.roofline._time(self.prompt_len, 0, self.prompt_len * (self.prompt_len + 1) / 2))

    @property
    def context_dependent(self) -> bool:
        return self.fixed_context is None

    def forward(self, n_new=1, context_len: int = 0, phase: Phase = "decode"):
        _check_phase(phase)
        n = np.asarray(n_new)
        if phase == "prefill" and n.ndim == 0 and n < 1:
            return self.ttft_ms
        if phase == "prefill" and n.ndim:
            n = np.where(n < 1, self.prompt_len, n)
        if np.any(n < 1):
            raise InvalidParameterError(f"n_new must be >= 1 (one forward processes at least one token), got {n_new!r}")
        c = self.fixed_context if self.fixed_context is not None else context_len
        if not (np.ndim(c) == 0 and c >= 0):
            raise InvalidParameterError(f"context_len must be an integer >= 0, got {context_len!r}")
        n = n.astype(float)
        return self.roofline._time(n, c, n * c + n * (n + 1) / 2.0)

    def __repr__(self) -> str:
        ctx = "" if self.fixed_context is None else f", fixed_context={self.fixed_context}"
        return f"{self.roofline!r}.single(tpot_ms={self.tpot_ms:.4g}{ctx})"


# -- fitting to measurements -------------------------------------------------------------------------------------

#: What :func:`fit_roofline` can fit, and each one's default when it is held fixed.
FIT_PARAMETERS = {"efficiency": 1.0, "compute_efficiency": None, "overhead_ms": 0.0, "per_layer_overhead_ms": 0.0}


class FitCell(NamedTuple):
    """One measured cell and a model's price of it: ``batch`` sequences, each ``width`` new tokens on ``context_len``."""

    model: str
    phase: str
    batch: int
    width: int
    context_len: int
    measured_ms: float
    predicted_ms: float

    @property
    def relative_error(self) -> float:
        """``predicted / measured − 1``."""
        return self.predicted_ms / self.measured_ms - 1.0


def _profile_cells(profile: Any, phases: Sequence[str]) -> tuple[str, list[tuple[str, int, int, int, float]]]:
    """``(model name, [(phase, batch, width, context, median ms)])`` of a profile in any of its forms."""
    from .batch_latency import ProfileBatchLatency
    from .profiles import FORWARD_PHASES, ProfileLatency, ProfileRow, read_profile_table

    for p in phases:
        if p not in FORWARD_PHASES:
            raise InvalidParameterError(f"phases must be among {FORWARD_PHASES}, got {p!r}")
    if isinstance(profile, (str, os.PathLike)):
        profile = read_profile_table(profile)
    if isinstance(profile, (ProfileLatency, ProfileBatchLatency)):
        parts = ([(1, profile)] if isinstance(profile, ProfileLatency)
                 else list(zip(profile.batches, profile.profiles)))
        cells = []
        for batch, prof in parts:
            for phase, grid in (("decode", prof.decode), ("prefill", prof.prefill)):
                if grid is None or phase not in phases:
                    continue
                for i, w in enumerate(grid.widths):
                    for j, c in enumerate(grid.contexts):
                        cells.append((phase, batch, int(w), int(c), float(grid.median[i, j])))
        return profile.model, cells
    rows = list(profile) if isinstance(profile, Iterable) else None
    if not rows or not all(isinstance(r, ProfileRow) for r in rows):
        raise InvalidParameterError(
            "a profile is a ProfileLatency, a ProfileBatchLatency, a profile CSV's path or its rows "
            f"(simspec.profiles.read_profile_table), got {type(profile).__name__}")
    models = list(dict.fromkeys(r.model for r in rows))
    if len(models) > 1:
        raise InvalidParameterError(
            f"the rows hold {len(models)} models ({', '.join(models)}); pass one model's rows, e.g. "
            f"[r for r in rows if r.model == {models[0]!r}]")
    cells = [(r.phase, r.batch, r.width, r.context_len, r.median_ms) for r in rows if r.phase in phases]
    return models[0], cells


def score(latency: Any, profile: Any, *, phases: Sequence[str] = ("decode", "prefill")) -> tuple[FitCell, ...]:
    """Every forward cell of ``profile`` priced by the batch model ``latency``: :class:`FitCell` records.

    A cell of batch ``B``, width ``w`` and context ``c`` is the step of ``B`` sequences
    each adding ``w`` tokens on ``c``.

    >>> import io
    >>> from simspec import load_profile
    >>> p = load_profile(io.StringIO("model,phase,width,context_len,median_ms\\nm,decode,1,0,20\\n"))
    >>> [round(c.relative_error, 3) for c in score(RooflineLatency("vicuna-7b", "A100-80GB"), p)]
    [-0.67]
    """
    from .batch_latency import as_batch_latency

    model = as_batch_latency("latency", latency)
    name, cells = _profile_cells(profile, phases)
    return tuple(FitCell(name, ph, b, w, c, y, model.step_ms([w] * b, [c] * b, ph)) for ph, b, w, c, y in cells)


class RooflineFit(NamedTuple):
    """What :func:`fit_roofline` found: the fitted model, its relative errors on the cells it was fitted to, the cells.

    ``latency`` is the fitted :class:`RooflineLatency` (of the first model when several
    were fitted together, ``latencies`` all of them); ``relative_errors`` are
    ``predicted / measured − 1`` per cell, in the order of ``cells``; ``fitted`` the
    fitted values by name.  :meth:`latency_for` puts the fitted parameters on another
    model or hardware.
    """

    latency: RooflineLatency
    relative_errors: np.ndarray
    cells: tuple[FitCell, ...]
    fitted: dict
    latencies: tuple[RooflineLatency, ...] = ()

    @property
    def rms(self) -> float:
        """Root mean square of the relative errors."""
        return float(np.sqrt(np.mean(self.relative_errors ** 2)))

    @property
    def max_abs(self) -> float:
        """Largest absolute relative error."""
        return float(np.max(np.abs(self.relative_errors)))

    def latency_for(self, model: ModelSpec | str | None = None, hardware: Hardware | str | None = None
                    ) -> RooflineLatency:
        """The fitted efficiencies and overheads on ``model`` and/or ``hardware`` (default: the fitted ones)."""
        return self.latency.replace(**{k: v for k, v in (("model", model), ("hardware", hardware)) if v is not None})


def fit_roofline(model: ModelSpec | str | Sequence[ModelSpec | str], hardware: Hardware | str, profile: Any, *,
                 fit: Sequence[str] = ("efficiency", "overhead_ms"), phases: Sequence[str] = ("decode", "prefill"),
                 **fixed: float) -> RooflineFit:
    """Fit a roofline's efficiencies and overheads to a measured profile by least squares of relative errors.

    ``profile``: a :class:`~simspec.ProfileLatency`, a :class:`~simspec.ProfileBatchLatency`,
    a profile CSV's path (one model) or its rows.  Several models measured on the same
    hardware share one fit: pass a list of models and a list of their profiles.
    ``fit`` names the parameters to fit (:data:`FIT_PARAMETERS`: ``efficiency``,
    ``compute_efficiency`` — else tied to ``efficiency`` —, ``overhead_ms``,
    ``per_layer_overhead_ms``); the others keep the values given as keywords, or their
    defaults.  Minimises ``Σ (predicted/measured − 1)²`` over every forward cell in
    ``phases``, efficiencies in (0, 1] and overheads >= 0 (``scipy.optimize.least_squares``
    from several starts; the best is kept).

    >>> true = RooflineLatency("vicuna-7b", "A100-80GB", efficiency=0.6, overhead_ms=4.0)
    >>> from simspec.profiles import ProfileRow
    >>> rows = [ProfileRow("v", "decode", w, 0, true.step_ms([w], [0])) for w in (1, 64, 512, 2048)]
    >>> f = fit_roofline("vicuna-7b", "A100-80GB", rows)
    >>> round(f.latency.efficiency, 6), round(f.latency.overhead_ms, 6), f.max_abs < 1e-9
    (0.6, 4.0, True)
    """
    from scipy.optimize import least_squares

    many = isinstance(model, (list, tuple))
    models = [m if isinstance(m, ModelSpec) else ModelSpec.preset(m) for m in (model if many else [model])]
    profiles = list(profile) if many else [profile]
    if many and len(profiles) != len(models):
        raise InvalidParameterError(f"{len(models)} models need {len(models)} profiles (one each), got {len(profiles)}")
    hardware = hardware_preset(hardware)
    names = list(dict.fromkeys(fit))
    for n in names:
        if n not in FIT_PARAMETERS:
            raise InvalidParameterError(f"cannot fit {n!r}; fit among {', '.join(FIT_PARAMETERS)}")
    if not names:
        raise InvalidParameterError("fit must name at least one parameter, e.g. fit=('efficiency',)")
    for n in fixed:
        if n not in FIT_PARAMETERS:
            raise InvalidParameterError(f"unknown parameter {n!r}; the roofline's are {', '.join(FIT_PARAMETERS)}")
        if n in names:
            raise InvalidParameterError(f"{n} is both fitted and fixed; drop it from fit=... or from the keywords")
    base = {**FIT_PARAMETERS, **fixed}
    # each cell: memory and compute ms at efficiency 1, layers, measured ms
    rows: list[tuple[int, float, float, int, float, tuple]] = []
    for k, (spec, prof) in enumerate(zip(models, profiles)):
        pure = RooflineLatency(spec, hardware)
        label, cells = _profile_cells(prof, phases)
        for ph, b, w, c, y in cells:
            n = np.full(b, w)
            mem, comp = pure._bounds(*RooflineLatency._totals(n, np.full(b, c)))
            rows.append((k, float(mem), float(comp), spec.layers, y, (label, ph, b, w, c)))
    if len(rows) < len(names):
        raise InvalidParameterError(
            f"the profile has {len(rows)} forward cell{'s' * (len(rows) != 1)} in phases {tuple(phases)}, too few to fit "
            f"{len(names)} parameters ({', '.join(names)}); fit fewer (e.g. fit=('efficiency',)) or measure more cells")
    mem = np.array([r[1] for r in rows])
    comp = np.array([r[2] for r in rows])
    layers = np.array([r[3] for r in rows], dtype=float)
    y = np.array([r[4] for r in rows])
    tied = "compute_efficiency" not in names and base["compute_efficiency"] is None
    scale = float(np.max(y))

    def unpack(x):
        v = dict(base)
        for n, xi in zip(names, x):
            v[n] = 1.0 / xi if n.endswith("efficiency") else xi * scale
        if tied:
            v["compute_efficiency"] = v["efficiency"]
        return v

    def residuals(x):
        v = unpack(x)
        pred = (v["overhead_ms"] + v["per_layer_overhead_ms"] * layers
                + np.maximum(mem / v["efficiency"], comp / v["compute_efficiency"]))
        return pred / y - 1.0

    lower = [1.0 if n.endswith("efficiency") else 0.0 for n in names]
    upper = [1e6 if n.endswith("efficiency") else 1e3 for n in names]
    best = None
    for u0 in (1.0, 1.5, 3.0, 10.0, 50.0):
        for o0 in (0.0, 0.1, 0.5):
            x0 = [u0 if n.endswith("efficiency") else o0 for n in names]
            x0 = np.clip(x0, lower, upper)
            x0 = np.where(x0 == np.asarray(lower), np.asarray(lower) + 1e-9, x0)
            res = least_squares(residuals, x0, bounds=(lower, upper), method="trf", x_scale="jac",
                                xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000)
            if best is None or res.cost < best.cost - 1e-18:
                best = res
    values = {k: (None if v is None else float(v)) for k, v in unpack(best.x).items()}
    params = {k: values[k] for k in FIT_PARAMETERS}
    latencies = tuple(RooflineLatency(spec, hardware, **params) for spec in models)
    cells = []
    for (k, _, _, _, yi, (label, ph, b, w, c)) in rows:
        cells.append(FitCell(label, ph, b, w, c, yi, latencies[k].step_ms([w] * b, [c] * b, ph)))
    errors = np.array([cell.relative_error for cell in cells])
    return RooflineFit(latencies[0], errors, tuple(cells), {n: values[n] for n in names}, latencies)
