"""Batch-aware latency: hardware presets, model shapes, the roofline, its fit, measured batch profiles.

The roofline's rules are pinned with hand-computed numbers (``theory/roofline.md`` derives them):
memory-bound at batch 1, the crossover batch, the single-sequence view, the fit recovering known values.
"""

import io
import math
import warnings

import numpy as np
import pytest

from simspec import (
    HARDWARE,
    BatchedLatency,
    BatchLatencyModel,
    ConstantLatency,
    Hardware,
    LatencyModel,
    ModelSpec,
    ProfileRangeWarning,
    RooflineLatency,
    fit_roofline,
    hardware_preset,
    load_batch_profile,
    load_profile,
)
from simspec.batch_latency import as_batch_latency
from simspec.errors import InvalidParameterError, ProfileFormatError
from simspec.profiles import ProfileRow
from simspec.roofline import LLAMA_SHAPES, MODELS, score

# A machine and a model with round numbers: 1000 GB/s, 100 TFLOP/s; 1e9 parameters in bf16 (2e9 bytes),
# 10 layers, 8 KV heads of 128 (KV bytes per token 2 · 10 · 8 · 128 · 2 = 40960), 16 query heads.
HW = Hardware("test", memory_bandwidth_GBps=1000.0, peak_tflops=100.0, memory_GiB=80.0, source="round numbers")
SPEC = ModelSpec("m", params=1_000_000_000, layers=10, hidden=2048, kv_heads=8, head_dim=128, heads=16)
KVB = 2 * 10 * 8 * 128 * 2


# -- hardware ----------------------------------------------------------------------------------------------------


def test_hardware_presets_are_the_datasheets_dense_numbers_with_their_sources():
    assert list(HARDWARE) == ["A100-80GB", "H100", "H200", "L40S", "CPU"]
    a100, h100, h200, l40s = (HARDWARE[k] for k in ("A100-80GB", "H100", "H200", "L40S"))
    assert (a100.memory_bandwidth_GBps, a100.peak_tflops, a100.memory_GiB) == (2039, 312, 80)
    assert (h100.memory_bandwidth_GBps, h100.peak_tflops, h100.memory_GiB) == (3350, 989.5, 80)
    assert (h200.memory_bandwidth_GBps, h200.peak_tflops, h200.memory_GiB) == (4800, 989.5, 141)
    assert (l40s.memory_bandwidth_GBps, l40s.peak_tflops, l40s.memory_GiB) == (864, 362.05, 48)
    for h in (a100, h100, h200, l40s):
        assert "datasheet" in h.source and "https://" in h.source and h.dtype == "bf16"
    cpu = HARDWARE["CPU"]
    assert cpu.dtype == "fp32" and "measured" in cpu.source and "--measure-host" in cpu.source
    assert a100.ridge_flops_per_byte == pytest.approx(312e12 / 2039e9)


@pytest.mark.parametrize("name", ["h100", "H 100", "a100-80gb", "A100_80GB", "l40s", "cpu", "H200"])
def test_hardware_preset_lookup_ignores_case_and_separators(name):
    assert hardware_preset(name) in HARDWARE.values()


def test_hardware_preset_error_lists_the_choices():
    with pytest.raises(InvalidParameterError, match=r"no hardware preset 'H10'.*did you mean 'H100'.*A100-80GB, H100"):
        hardware_preset("H10")


@pytest.mark.parametrize("kwargs, match", [
    ({"memory_bandwidth_GBps": -1.0}, "memory_bandwidth_GBps must be a finite number >= 0.*GB/s"),
    ({"memory_bandwidth_GBps": 0.0}, "memory_bandwidth_GBps must be > 0"),
    ({"peak_tflops": float("nan")}, "peak_tflops"),
    ({"memory_GiB": 0}, "memory_GiB must be > 0"),
    ({"name": ""}, "needs a name"),
])
def test_hardware_refuses_bad_facts(kwargs, match):
    args = {"name": "x", "memory_bandwidth_GBps": 1.0, "peak_tflops": 1.0, "memory_GiB": 1.0, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        Hardware(**args)


# -- model shapes --------------------------------------------------------------------------------------------------


def test_presets_count_the_published_parameters():
    counts = {name: spec.params for name, spec in MODELS.items()}
    assert counts["smollm2-135m"] == 134_515_008      # the tensors of the built-in GGUF file
    assert counts["gemma-3-270m"] == 268_098_176      # likewise
    assert counts["llama-3.2-1b"] == 1_235_814_400
    assert counts["llama-3-8b"] == 8_030_261_248
    assert counts["vicuna-7b"] == 6_738_415_616        # Llama-2-7B's count
    assert counts["vicuna-13b"] == 13_015_864_320
    assert counts["phi3-4b"] == 3_821_079_552
    assert counts["vicuna-68m"] == 68_030_208
    assert abs(counts["starcoder-15b"] / 15.5e9 - 1) < 0.01 and abs(counts["phi3-14b"] / 14e9 - 1) < 0.01
    assert all(spec.source.startswith("config.json") for spec in MODELS.values())


def test_kv_bytes_and_weight_bytes_follow_the_shape():
    assert SPEC.kv_bytes_per_token == KVB
    assert SPEC.weight_bytes == 2e9 and SPEC.attention_width == 10 * 16 * 128
    untied = ModelSpec("u", 1_000_000, 1, 64, 1, 64, vocab=1000, tied_embeddings=False, bytes_per_param=4)
    assert untied.matmul_params == 1_000_000 - 64_000 and untied.weight_bytes == 4 * 936_000
    assert SPEC.replace(kv_bytes_per_value=1).kv_bytes_per_token == KVB / 2
    fp32 = ModelSpec.preset("smollm2-135m", bytes_per_param=4)
    assert fp32.kv_bytes_per_token == 2 * 30 * 3 * 64 * 4 and fp32.weight_bytes == 4 * 134_515_008
    assert SPEC.replace(bytes_per_param=4).kv_bytes_per_token == 2 * KVB  # the cache follows the weights' type


def test_preset_lookup_ignores_case_separators_and_a_dataset_suffix():
    assert ModelSpec.preset("Vicuna-13B@cnn-dm") is MODELS["vicuna-13b"]
    assert ModelSpec.preset("gemma3-270m") is MODELS["gemma-3-270m"]
    with pytest.raises(InvalidParameterError, match="no model preset 'llama-9b'.*vicuna-7b"):
        ModelSpec.preset("llama-9b")


def test_from_config_counts_a_transformers_models_parameters_exactly():
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    spec = ModelSpec.from_config(cfg, bytes_per_param=4)
    assert spec.params == LlamaForCausalLM(cfg).num_parameters()
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.head_dim) == (3, 64, 4, 2, 16)
    assert spec.matmul_params == spec.params - 300 * 64
    as_dict = ModelSpec.from_config(cfg.to_dict(), bytes_per_param=4)
    assert as_dict.params == spec.params
    gpt = GPT2Config(vocab_size=300, n_positions=128, n_embd=64, n_layer=2, n_head=4)
    # GPT-2 has biases, which the count leaves out: within a few per cent
    assert ModelSpec.from_config(gpt).params == pytest.approx(GPT2LMHeadModel(gpt).num_parameters(), rel=0.03)


def test_from_config_reads_nested_text_configs_and_refuses_missing_keys():
    spec = ModelSpec.from_config({"text_config": {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18,
                                                  "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
                                                  "intermediate_size": 2048, "vocab_size": 262144}})
    assert spec.params == 268_098_176 and spec.tied_embeddings
    with pytest.raises(InvalidParameterError, match="lacks num_hidden_layers"):
        ModelSpec.from_config({"hidden_size": 64, "num_attention_heads": 4})
    with pytest.raises(InvalidParameterError, match="unknown dtype 'int3'"):
        ModelSpec.from_config({"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4,
                               "torch_dtype": "int3"})


def test_from_params_reproduces_the_table_at_its_points_and_interpolates_between():
    for params, layers, hidden, kv_width in LLAMA_SHAPES:
        s = ModelSpec.from_params(params)
        assert (s.layers, s.hidden, s.kv_heads * s.head_dim) == (layers, hidden, kv_width)
        assert s.params == params and s.matmul_params == params
    mid = ModelSpec.from_params(math.sqrt(8_030_261_248 * 70_553_706_496))  # halfway in log-parameters
    assert mid.layers == round(math.sqrt(32 * 80)) and mid.head_dim == 128
    assert mid.hidden == 128 * round(math.sqrt(4096 * 8192) / 128)
    small = ModelSpec.from_params(68e6)
    assert small.head_dim == 64 and small.hidden < 576 and small.layers >= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"params": 0}, "params must be an integer >= 1"),
    ({"params": -5}, "params must be an integer >= 1"),
    ({"layers": 0}, "layers must be an integer >= 1"),
    ({"kv_heads": 32}, r"kv_heads \(32\) must be <= heads \(16\)"),
    ({"bytes_per_param": 0}, "bytes_per_param must be > 0.*2 for bf16"),
    ({"vocab": 10**9, "tied_embeddings": False}, "untied embedding table"),
])
def test_model_spec_refuses_bad_shapes(kwargs, match):
    args = {"name": "m", "params": 1_000_000_000, "layers": 10, "hidden": 2048, "kv_heads": 8, "head_dim": 128,
            "heads": 16, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        ModelSpec(**args)


def test_from_params_refuses_non_numbers():
    with pytest.raises(InvalidParameterError, match="n must be a number of parameters"):
        ModelSpec.from_params("big")
    with pytest.raises(InvalidParameterError, match=">= 1e6"):
        ModelSpec.from_params(100)


# -- the roofline --------------------------------------------------------------------------------------------------


def test_memory_bound_at_batch_one_is_weight_bytes_over_bandwidth():
    m = RooflineLatency(SPEC, HW, efficiency=0.5, overhead_ms=2.0)
    # one token on 100 cached: bytes 2e9 + 40960·101, at 0.5 · 1e12 B/s; FLOPs 2e9 + 4·20480·(100 + 1) ≪ peak
    expected = 2.0 + (2e9 + KVB * 101) / (0.5 * 1e12) * 1e3
    assert m.step_ms([1], [100]) == pytest.approx(expected, rel=1e-12)
    assert m.breakdown([1], [100])["bound"] == "memory"
    assert m.step_ms([1], [0]) == pytest.approx(2.0 + (2e9 + KVB) / 0.5e12 * 1e3, rel=1e-12)


def test_compute_bound_prefill_is_flops_over_peak():
    m = RooflineLatency(SPEC, HW, efficiency=0.8, compute_efficiency=0.5, per_layer_overhead_ms=0.1)
    n = 4096  # a prompt: 2·1e9·4096 + 4·20480·4096·4097/2 FLOPs at 0.5 · 100e12
    flops = 2e9 * n + 4 * 10 * 16 * 128 * n * (n + 1) / 2
    assert m.step_ms([n], [0], "prefill") == pytest.approx(10 * 0.1 + flops / 50e12 * 1e3, rel=1e-12)
    assert m.breakdown([n], [0])["bound"] == "compute"


def test_the_crossover_batch_is_the_hand_computed_one():
    m = RooflineLatency(SPEC, HW, efficiency=0.8, compute_efficiency=0.5)
    # B decodes on empty caches: (2e9 + B·40960)/(0.8e12) = B·(2e9 + 4·20480·1)/(0.5·100e12)
    per_seq_flops_s = (2e9 + 4 * 20480) / 50e12
    per_seq_bytes_s = KVB / 0.8e12
    expected = (2e9 / 0.8e12) / (per_seq_flops_s - per_seq_bytes_s)
    assert m.crossover_batch(0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(62.5 / (1 + 4 * 20480 / 2e9 - KVB * 50e12 / 0.8e12 / 2e9), rel=1e-12)
    below, above = math.floor(expected), math.ceil(expected)
    assert m.breakdown([1] * below, [0] * below)["bound"] == "memory"
    assert m.breakdown([1] * above, [0] * above)["bound"] == "compute"
    # without KV, the textbook ridge: bytes per parameter · peak · e_c / (2 · bandwidth · e_m)
    assert 2 * 50e12 / (2 * 0.8e12) == pytest.approx(62.5)
    # a long enough context keeps every batch memory-bound
    assert m.crossover_batch(100_000) == math.inf


def test_single_equals_step_ms_at_batch_one():
    m = RooflineLatency(SPEC, HW, efficiency=0.7, overhead_ms=1.0, per_layer_overhead_ms=0.05)
    one = m.single()
    assert isinstance(one, LatencyModel) and one.deterministic and one.context_dependent
    widths = np.array([1, 2, 5, 17, 300])
    for c in (0, 7, 1000):
        assert one.forward(widths, c).tolist() == [m.step_ms([int(w)], [c]) for w in widths]
        assert one.forward(3, c) == m.step_ms([3], [c])
        assert one.sample(np.random.default_rng(0), 3, c) == m.step_ms([3], [c])
    assert one.tpot_ms == m.step_ms([1], [0])
    assert one.ttft_ms == m.step_ms([1], [0], "prefill")
    assert one.forward(0, 0, "prefill") == one.ttft_ms
    fixed = m.single(context_len=512, prompt_len=128)
    assert not fixed.context_dependent and fixed.forward(2, 0) == m.step_ms([2], [512])
    assert fixed.ttft_ms == m.step_ms([128], [0], "prefill") and fixed.tpot_ms == m.step_ms([1], [512])


def test_the_single_view_runs_in_the_single_request_engines():
    from simspec import Scenario, compare, simulate

    target = RooflineLatency("vicuna-7b", "A100-80GB", efficiency=0.5, overhead_ms=2.0)
    drafter = RooflineLatency("vicuna-68m", "A100-80GB", efficiency=0.5, overhead_ms=2.0)
    s = Scenario.from_profiles(target.single(context_len=0), drafter.single(context_len=0), 0.7, lookahead=3,
                               tokens=100)
    assert compare(s, "theory").si.latency_per_token_ms.mean > 0
    s = Scenario.from_profiles(target.single(), drafter.single(), 0.7, lookahead=3, tokens=50)
    assert simulate(s, "si", replications=2, rng=0).latency_ms.mean > 0


def test_roofline_is_a_batch_latency_model_and_runs_in_the_serving_engine():
    from simspec import IIDAcceptance, PoissonArrivals, Workload, serve

    target = RooflineLatency("vicuna-7b", "A100-80GB", efficiency=0.6, overhead_ms=3.0)
    drafter = RooflineLatency("vicuna-68m", "A100-80GB", efficiency=0.6, overhead_ms=1.0)
    assert isinstance(target, BatchLatencyModel) and as_batch_latency("t", target) is target
    w = Workload(PoissonArrivals(rate=0.05), prompt_len=32, output_len=20, requests=4)
    res = serve(w, target, drafter, IIDAcceptance(0.8), lookahead=3, rng=0)
    assert res.metrics["si"]["tpot_p50_ms"].mean > 0


def test_batched_latency_at_batch_one_is_the_wrapped_model():
    base = ConstantLatency(30.0)
    assert BatchedLatency(base).single() is base and BatchedLatency(base).step_ms([3], [10]) == 30.0


@pytest.mark.parametrize("kwargs, match", [
    ({"efficiency": 1.5}, r"efficiency must be in \(0, 1\].*GB/s vs GiB/s"),
    ({"efficiency": 0}, "efficiency must be > 0"),
    ({"compute_efficiency": -0.1}, "compute_efficiency must be a finite number >= 0"),
    ({"overhead_ms": -1}, "overhead_ms must be a finite number >= 0"),
    ({"hardware": "TPU"}, "no hardware preset 'TPU'"),
    ({"model": "gpt-5"}, "no model preset 'gpt-5'"),
])
def test_roofline_refuses_bad_parameters(kwargs, match):
    args = {"model": SPEC, "hardware": HW, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        RooflineLatency(**args)


def test_roofline_refuses_weights_that_do_not_fit():
    with pytest.raises(InvalidParameterError, match=r"weights \(131.4 GiB.*do not fit in the 80 GiB of A100-80GB"):
        RooflineLatency(ModelSpec.from_params(70.55e9), "A100-80GB")
    assert RooflineLatency(ModelSpec.from_params(70.55e9), "H200").kv_capacity_tokens > 0


def test_step_checks_its_input():
    m = RooflineLatency(SPEC, HW)
    with pytest.raises(InvalidParameterError, match="at least one token"):
        m.step_ms([0], [0])
    with pytest.raises(InvalidParameterError, match="one entry per sequence"):
        m.step_ms([1, 1], [0])
    with pytest.raises(InvalidParameterError, match="phase must be"):
        m.step_ms([1], [0], "verify")


# -- fitting -------------------------------------------------------------------------------------------------------


def _rows(model, spec_name="v", widths=(1, 8, 64, 512, 2048), contexts=(0, 1000), batches=(1,)):
    return [ProfileRow(spec_name, "decode", w, c, model.step_ms([w] * b, [c] * b), batch=b)
            for b in batches for w in widths for c in contexts]


def test_fit_recovers_a_known_efficiency_and_overhead():
    true = RooflineLatency(SPEC, HW, efficiency=0.37, overhead_ms=1.25)
    fit = fit_roofline(SPEC, HW, _rows(true))
    assert fit.latency.efficiency == pytest.approx(0.37, rel=1e-7)
    assert fit.latency.compute_efficiency == pytest.approx(0.37, rel=1e-7)
    assert fit.latency.overhead_ms == pytest.approx(1.25, rel=1e-6)
    assert fit.max_abs < 1e-8 and len(fit.cells) == len(fit.relative_errors) == 10
    assert set(fit.fitted) == {"efficiency", "overhead_ms"}


def test_fit_recovers_separate_efficiencies_and_a_per_layer_overhead_across_models():
    other = ModelSpec("n", params=3_000_000_000, layers=30, hidden=3072, kv_heads=8, head_dim=128)
    kw = dict(efficiency=0.8, compute_efficiency=0.45, per_layer_overhead_ms=0.2)
    profiles = [_rows(RooflineLatency(s, HW, **kw), s.name) for s in (SPEC, other)]
    fit = fit_roofline([SPEC, other], HW, profiles, fit=("efficiency", "compute_efficiency", "per_layer_overhead_ms"))
    assert fit.fitted["efficiency"] == pytest.approx(0.8, rel=1e-6)
    assert fit.fitted["compute_efficiency"] == pytest.approx(0.45, rel=1e-6)
    assert fit.fitted["per_layer_overhead_ms"] == pytest.approx(0.2, rel=1e-6)
    assert [m.model.name for m in fit.latencies] == ["m", "n"]
    moved = fit.latency_for(hardware="H100")
    assert moved.hardware.name == "H100" and moved.efficiency == fit.latency.efficiency


def test_fit_reads_batch_profiles_and_profile_latencies():
    true = RooflineLatency(SPEC, HW, efficiency=0.6, overhead_ms=0.5)
    text = "model,phase,width,context_len,median_ms,batch\n" + "".join(
        f"v,decode,{w},{c},{true.step_ms([w] * b, [c] * b)!r},{b}\n"
        for b in (1, 8, 64) for w in (1, 4) for c in (0, 256))
    batch = load_batch_profile(io.StringIO(text))
    fit = fit_roofline(SPEC, HW, batch)
    assert fit.latency.efficiency == pytest.approx(0.6, rel=1e-7) and len(fit.cells) == 12
    assert {c.batch for c in fit.cells} == {1, 8, 64}
    one = load_profile(io.StringIO(text), batch=1)
    assert len(score(true, one)) == 4 and max(abs(c.relative_error) for c in score(true, one)) < 1e-12


def test_fit_holds_unfitted_parameters_at_the_given_values():
    true = RooflineLatency(SPEC, HW, efficiency=0.5, overhead_ms=3.0)
    fit = fit_roofline(SPEC, HW, _rows(true), fit=("efficiency",), overhead_ms=3.0)
    assert fit.latency.efficiency == pytest.approx(0.5, rel=1e-9) and fit.latency.overhead_ms == 3.0


@pytest.mark.parametrize("kwargs, match", [
    ({"fit": ("speed",)}, "cannot fit 'speed'"),
    ({"fit": ()}, "at least one parameter"),
    ({"fit": ("efficiency",), "efficiency": 0.5}, "both fitted and fixed"),
    ({"fit": ("efficiency",), "overheads": 1.0}, "unknown parameter 'overheads'"),
    ({"phases": ("verify",)}, "phases must be among"),
])
def test_fit_refuses_bad_requests(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        fit_roofline(SPEC, HW, _rows(RooflineLatency(SPEC, HW)), **kwargs)


def test_fit_needs_as_many_cells_as_parameters():
    rows = [ProfileRow("v", "decode", 1, 0, 30.0)]
    with pytest.raises(InvalidParameterError, match="1 forward cell in phases.*too few to fit 2 parameters"):
        fit_roofline(SPEC, HW, rows)
    assert fit_roofline(SPEC, HW, rows, fit=("efficiency",)).max_abs < 1e-9
    with pytest.raises(InvalidParameterError, match="the rows hold 2 models"):
        fit_roofline(SPEC, HW, rows + [ProfileRow("w", "decode", 1, 0, 30.0)])
    with pytest.raises(InvalidParameterError, match="2 models need 2 profiles"):
        fit_roofline([SPEC, SPEC], HW, [rows])


# -- measured batch profiles ---------------------------------------------------------------------------------------

BATCH_TEXT = ("model,phase,width,context_len,median_ms,batch\n"
              "m,decode,1,0,10,1\nm,decode,1,100,12,1\nm,decode,5,0,14,1\nm,decode,5,100,20,1\n"
              "m,decode,1,0,20,5\nm,decode,1,100,30,5\nm,decode,5,0,40,5\nm,decode,5,100,60,5\n"
              "m,prefill,64,0,50,1\n")


def test_a_step_maps_to_batch_count_widest_width_and_mean_context():
    p = load_batch_profile(io.StringIO(BATCH_TEXT))
    assert p.batches == (1, 5) and isinstance(p, BatchLatencyModel) and type(p).__name__ == "ProfileBatchLatency"
    assert p.step_ms([1], [0]) == 10 and p.step_ms([5] * 5, [100] * 5) == 60
    # 3 sequences (batch halfway), widest 5, mean context (0 + 50 + 100)/3 = 50:
    # batch 1 at (5, 50) = 17, batch 5 at (5, 50) = 50, halfway = 33.5
    assert p.step_ms([5, 1, 2], [0, 50, 100]) == pytest.approx(33.5)
    assert p.step_ms([3], [0]) == pytest.approx(12.0)
    assert p.step_ms([64], [0], "prefill") == 50 and p.step_ms([64, 64], [0, 0], "prefill") == 50
    assert p.sample_step(np.random.default_rng(0), [1], [0]) == 10 and p.deterministic


def test_outside_the_measured_batches_the_nearest_value_and_one_warning():
    p = load_batch_profile(io.StringIO(BATCH_TEXT))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert p.step_ms([1] * 9, [0] * 9) == 20 and p.step_ms([1] * 12, [0] * 12) == 20
    assert [type(w.message) for w in caught] == [ProfileRangeWarning]
    assert "batch 9 is above the measured range 1..5" in str(caught[0].message)


def test_single_is_the_batch_one_profile():
    p = load_batch_profile(io.StringIO(BATCH_TEXT))
    assert p.single() is p.profiles[0] and p.single().forward(5, 100) == 20
    no_one = load_batch_profile(io.StringIO(BATCH_TEXT.replace(",1\n", ",2\n")))
    with pytest.warns(ProfileRangeWarning, match="batch 1 is below the measured range 2..5"):
        assert no_one.single() is no_one.profiles[0]


def test_ragged_batch_grids_are_refused_by_file_and_line():
    text = BATCH_TEXT.replace("m,decode,5,0,40,5\nm,decode,5,100,60,5\n", "m,decode,4,0,40,5\nm,decode,4,100,60,5\n")
    with pytest.raises(ProfileFormatError, match=r"<stream>:6:1: model 'm' decode: batch 5 measures widths \[1, 4\].*"
                                                 r"batch 1 measures widths \[1, 5\]"):
        load_batch_profile(io.StringIO(text))
    assert load_profile(io.StringIO(text), batch=5).forward(4, 0) == 40  # one batch at a time still loads


def test_batch_profile_picks_a_model_and_replays_spread():
    two = BATCH_TEXT + "n,decode,1,0,3,1\n"
    with pytest.raises(InvalidParameterError, match="2 models"):
        load_batch_profile(io.StringIO(two))
    with pytest.raises(InvalidParameterError, match="no model 'x'"):
        load_batch_profile(io.StringIO(two), "x")
    assert load_batch_profile(io.StringIO(two), "n").step_ms([1, 1], [0, 0]) == 3
    text = ("model,phase,width,context_len,median_ms,p25_ms,p75_ms,batch\n"
            "m,decode,1,0,20,18,22.2222,1\nm,decode,1,0,40,36,44.4444,2\n")
    s = load_batch_profile(io.StringIO(text), stochastic=True)
    assert not s.deterministic and s.step_ms([1], [0]) > 20
    draws = [s.sample_step(np.random.default_rng(i), [1, 1], [0, 0]) for i in range(4000)]
    assert np.median(draws) == pytest.approx(40, rel=0.03)
    assert s.step_ms([1], [0], "prefill") == 0.0


def test_builtin_profiles_load_as_batch_profiles():
    p = load_batch_profile("builtin:dsi-paper-a100", "vicuna-7b@alpaca")
    assert p.batches == (1,) and p.step_ms([1, 1, 1], [0, 0, 0]) == 26.0


# -- measuring batched forwards ------------------------------------------------------------------------------------


def test_measure_profile_times_batched_forwards(tmp_path):
    pytest.importorskip("transformers")
    from simspec.real import measure_profile, tiny_model

    model = tiny_model(layers=1, hidden=32)
    shapes = []
    orig = model.model.forward

    def logged(*args, **kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        shapes.append((tuple(kwargs["input_ids"].shape), 0 if cache is None else cache.get_seq_length()))
        return orig(*args, **kwargs)

    model.model.forward = logged
    out = tmp_path / "p.csv"
    rows = measure_profile(model, widths=[1, 2], contexts=[8], batches=[1, 3], repeats=2, warmup=0, progress=False,
                           out=out)
    del model.model.forward
    assert [(r["phase"], r["width"], r["context_len"], r["batch"]) for r in rows] == [
        ("prefill", 8, 0, 1), ("decode", 1, 8, 1), ("decode", 2, 8, 1),
        ("prefill", 8, 0, 3), ("decode", 1, 8, 3), ("decode", 2, 8, 3)]
    assert shapes[:2] == [((1, 8), 0), ((3, 8), 0)]  # one cache per batch size and context
    assert sorted(set(shapes[2:])) == [((1, 1), 8), ((1, 2), 8), ((1, 8), 0), ((3, 1), 8), ((3, 2), 8), ((3, 8), 0)]
    p = load_batch_profile(out)
    assert p.batches == (1, 3) and "batch sizes 1, 3" in out.read_text()
    by = {(r["phase"], r["width"], r["batch"]): r["median_ms"] for r in rows}
    assert p.step_ms([2, 2, 2], [8, 8, 8]) == pytest.approx(by[("decode", 2, 3)], rel=1e-12)
    with pytest.raises(InvalidParameterError, match="batches must be"):
        measure_profile(model, widths=[1], contexts=[8], batches=[0], progress=False)


def test_cli_measure_batch_writes_a_batch_profile(tmp_path, capsys):
    pytest.importorskip("transformers")
    from simspec.cli import main

    out = tmp_path / "p.csv"
    assert main(["measure", "--tiny", "--widths", "1", "--contexts", "8", "--batch", "1,2", "--repeats", "1",
                 "--warmup", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 cells (2 prefill, 2 decode: widths 1 x contexts 8 x batches 1,2)" in printed
    assert load_batch_profile(out).batches == (1, 2)
    assert main(["measure", "--tiny", "--batch", "0", "--out", str(out)]) == 2
    assert "--batch must hold integers >= 1" in capsys.readouterr().err
