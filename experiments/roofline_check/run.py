"""The roofline against measured forwards: this CPU's profiles and the DSI paper's A100 TPOTs.

Usage:  python experiments/roofline_check/run.py [--out DIR] [--quick] [--reference]
        python experiments/roofline_check/run.py --measure-host [--threads N]

1. **CPU.** ``experiments/real_pair/out/profiles.csv``: Gemma-3-270M and SmolLM2-135M, float32,
   one torch thread on this machine (prefill and decode, widths 1-24, contexts 16-160), against
   ``RooflineLatency(ModelSpec.preset(..., bytes_per_param=4), hardware_preset("CPU"))``:
   (i) unfitted (efficiency 1, no overhead: the pure roofline); (ii) fitted
   (``fit_roofline``: efficiency and a fixed overhead) on half of the cells, a checkerboard over
   (phase, width, context), scored on the other half; (iii) fitted on the other model's profile
   and scored on this one's (the calibration moved to a model never measured).
2. **A100.** ``builtin:dsi-paper-a100``: the DSI paper's 16 TPOTs (width 1, bf16) against
   ``RooflineLatency(ModelSpec.preset(...), hardware_preset("A100-80GB"))``: (i) unfitted;
   (ii) one shared fit, leave one model family out (fit on the other families' TPOTs, predict the
   left-out family's), for four choices of the fitted parameters; (iii) one model's efficiency fitted
   on its first dataset's TPOT and scored on its other datasets.
3. **What if.** The shared A100 fit (efficiency and per-layer overhead, all TPOTs) moved to the
   H100, H200 and L40S presets: predicted TPOTs of the paper's targets, which nobody measured.

Writes ``DIR/summary.md`` and ``DIR/numbers.json``; deterministic, a few seconds (``--quick`` is
the same run, for tests/test_experiments_regen.py).  ``--measure-host`` instead measures this
machine's one-thread memory bandwidth and float32 matrix throughput (what the ``CPU`` preset
holds) and prints them as a ``Hardware``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from simspec import ModelSpec, RooflineLatency, fit_roofline, hardware_preset
from simspec.io import add_reference_flag, atomic_write_text, check_reference_flag, write_experiment_numbers
from simspec.profiles import ProfileRow, read_profile_table
from simspec.roofline import score

HERE = Path(__file__).resolve().parent
CPU_PROFILES = HERE.parent / "real_pair" / "out" / "profiles.csv"
#: the profile's model name -> the ModelSpec preset (float32 on the CPU)
CPU_MODELS = {"gemma3-270m": "gemma-3-270m", "smollm2-135m": "smollm2-135m"}
#: fits compared by leave-one-family-out on the A100 TPOTs (one decode cell per model: no compute regime to fit)
A100_FITS = {
    "efficiency": ("efficiency",),
    "efficiency + overhead": ("efficiency", "overhead_ms"),
    "efficiency + per-layer overhead": ("efficiency", "per_layer_overhead_ms"),
    "efficiency + both overheads": ("efficiency", "overhead_ms", "per_layer_overhead_ms"),
}
MAIN_FIT = "efficiency + per-layer overhead"
WHAT_IF = ("vicuna-7b", "vicuna-13b", "starcoder-15b", "phi3-14b", "phi3-4b")
COLUMNS = ["part", "model", "case", "cells", "median_error", "mean_abs_error", "max_abs_error", "fitted"]


def _stats(errors) -> tuple[float, float, float]:
    e = np.asarray(errors, dtype=float)
    return float(np.median(e)), float(np.mean(np.abs(e))), float(np.max(np.abs(e)))


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _abs_pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _fitted(fit) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in fit.fitted.items())


def _checkerboard(rows: list[ProfileRow]) -> tuple[list[ProfileRow], list[ProfileRow]]:
    """Cells split by the parity of their (width index + context index) within each phase: fit on even, score odd."""
    train, test = [], []
    for phase in ("prefill", "decode"):
        mine = [r for r in rows if r.phase == phase]
        widths = sorted({r.width for r in mine})
        contexts = sorted({r.context_len for r in mine})
        for r in mine:
            (train if (widths.index(r.width) + contexts.index(r.context_len)) % 2 == 0 else test).append(r)
    return train, test


def cpu_part(table: list, lines: list) -> None:
    rows = [r for r in read_profile_table(CPU_PROFILES) if r.phase in ("decode", "prefill")]
    cpu = hardware_preset("CPU")
    devices = {(r.device, r.dtype, r.threads) for r in rows}
    lines += ["## 1. This CPU: Gemma-3-270M and SmolLM2-135M (float32, one thread)", "",
              f"Profiles: `experiments/real_pair/out/profiles.csv` ({', '.join(f'{d}, {t}, {n} thread' for d, t, n in sorted(devices))}). "
              f"Hardware: the `CPU` preset, {cpu.memory_bandwidth_GBps:g} GB/s and {cpu.peak_tflops * 1e3:g} GFLOP/s "
              "(one idle core, measured). Errors are predicted / measured − 1 over every forward cell "
              "(prefill and decode).", "",
              "| model | case | cells | median error | mean abs error | max abs error | fitted |",
              "|---|---|---|---|---|---|---|"]
    fits = {}
    for name, preset in CPU_MODELS.items():
        spec = ModelSpec.preset(preset, bytes_per_param=4)
        mine = [r for r in rows if r.model == name]
        fits[name] = (spec, mine, fit_roofline(spec, cpu, mine))
    for name, (spec, mine, full) in fits.items():
        cases = []
        cells = score(RooflineLatency(spec, cpu), mine)
        cases.append(("unfitted roofline", [c.relative_error for c in cells], "—"))
        train, test = _checkerboard(mine)
        half = fit_roofline(spec, cpu, train)
        cases.append(("fitted on half the cells, scored on the other half",
                      [c.relative_error for c in score(half.latency, test)], _fitted(half)))
        other = next(n for n in fits if n != name)
        moved = fits[other][2]
        cases.append((f"fitted on {other}, scored here",
                      [c.relative_error for c in score(moved.latency_for(spec), mine)], _fitted(moved)))
        cases.append(("fitted on all cells (in-sample)", list(full.relative_errors), _fitted(full)))
        for case, errs, fitted in cases:
            med, mean_abs, max_abs = _stats(errs)
            table.append(["cpu", name, case, len(errs), med, mean_abs, max_abs, fitted])
            lines.append(f"| {name} | {case} | {len(errs)} | {_pct(med)} | {_abs_pct(mean_abs)} | "
                         f"{_abs_pct(max_abs)} | {fitted} |")
    lines += ["", "TPOT (decode, width 1, the smallest context) and a wide verification (width 16), in ms:", "",
              "| model | cell | measured | unfitted roofline | fitted on half the cells |", "|---|---|---|---|---|"]
    for name, (spec, mine, _) in fits.items():
        half = fit_roofline(spec, cpu, _checkerboard(mine)[0]).latency
        c0 = min(r.context_len for r in mine if r.phase == "decode")
        for w in (1, 16):
            r = next(r for r in mine if r.phase == "decode" and r.width == w and r.context_len == c0)
            lines.append(f"| {name} | decode width {w}, context {c0} | {r.median_ms:.1f} | "
                         f"{RooflineLatency(spec, cpu).step_ms([w], [c0]):.1f} | {half.step_ms([w], [c0]):.1f} |")
    lines.append("")


def a100_part(table: list, lines: list) -> None:
    rows = read_profile_table("builtin:dsi-paper-a100")
    a100 = hardware_preset("A100-80GB")
    specs = [ModelSpec.preset(r.model) for r in rows]
    family = [r.model.partition("@")[0] for r in rows]
    unfitted = [score(RooflineLatency(s, a100), [r])[0] for r, s in zip(rows, specs)]
    lomo: dict[str, list[float]] = {}
    lomo_pred: dict[str, list[float]] = {}
    for label, names in A100_FITS.items():
        errs, preds = [0.0] * len(rows), [0.0] * len(rows)
        for fam in dict.fromkeys(family):
            train = [i for i, f in enumerate(family) if f != fam]
            fit = fit_roofline([specs[i] for i in train], a100, [[rows[i]] for i in train], fit=names)
            for i, f in enumerate(family):
                if f == fam:
                    cell = score(fit.latency_for(specs[i]), [rows[i]])[0]
                    errs[i], preds[i] = cell.relative_error, cell.predicted_ms
        lomo[label], lomo_pred[label] = errs, preds
    # one model's efficiency fitted on its first dataset's TPOT, scored on its other datasets
    calib: dict[int, float] = {}
    for fam in dict.fromkeys(family):
        idx = [i for i, f in enumerate(family) if f == fam]
        if len(idx) < 2:
            continue
        fit = fit_roofline(specs[idx[0]], a100, [rows[idx[0]]], fit=("efficiency",))
        for i in idx[1:]:
            calib[i] = score(fit.latency, [rows[i]])[0].relative_error
    lines += ["## 2. One A100-80GB: the DSI paper's TPOTs (bf16, width 1)", "",
              "Profile: `builtin:dsi-paper-a100` (Timor et al., Table 1). Hardware: the `A100-80GB` preset "
              f"({a100.memory_bandwidth_GBps:g} GB/s, {a100.peak_tflops:g} TFLOP/s). A TPOT is one cell, so only "
              "memory-side parameters can be fitted. *Leave-one-family-out*: one fit shared by the other model "
              f"families ({MAIN_FIT} below), then the left-out family predicted. *Calibrated*: the model's "
              "efficiency fitted on its first dataset's TPOT, scored on its other datasets.", "",
              "| model@dataset | measured TPOT (ms) | unfitted roofline (ms) | error | leave-one-family-out (ms) | "
              "error | calibrated on another dataset: error |", "|---|---|---|---|---|---|---|"]
    for i, (r, c) in enumerate(zip(rows, unfitted)):
        cal = _pct(calib[i]) if i in calib else "—"
        lines.append(f"| {r.model} | {r.median_ms:g} | {c.predicted_ms:.2f} | {_pct(c.relative_error)} | "
                     f"{lomo_pred[MAIN_FIT][i]:.1f} | {_pct(lomo[MAIN_FIT][i])} | {cal} |")
    med, mean_abs, max_abs = _stats([c.relative_error for c in unfitted])
    table.append(["a100", "all 16 TPOTs", "unfitted roofline", len(rows), med, mean_abs, max_abs, "—"])
    lines += ["", "Summary over the 16 TPOTs:", "", "| case | median error | mean abs error | max abs error | "
              "fitted on all 16 (in-sample) |", "|---|---|---|---|---|",
              f"| unfitted roofline | {_pct(med)} | {_abs_pct(mean_abs)} | {_abs_pct(max_abs)} | — |"]
    for label, names in A100_FITS.items():
        med, mean_abs, max_abs = _stats(lomo[label])
        full = fit_roofline(specs, a100, [[r] for r in rows], fit=names)
        table.append(["a100", "all 16 TPOTs", f"leave-one-family-out: {label}", len(rows), med, mean_abs, max_abs,
                      _fitted(full)])
        lines.append(f"| leave-one-family-out, {label} | {_pct(med)} | {_abs_pct(mean_abs)} | {_abs_pct(max_abs)} | "
                     f"{_fitted(full)}; in-sample mean abs {_abs_pct(float(np.mean(np.abs(full.relative_errors))))} |")
    med, mean_abs, max_abs = _stats(list(calib.values()))
    table.append(["a100", "other datasets", "calibrated on one dataset", len(calib), med, mean_abs, max_abs, "—"])
    lines += [f"| calibrated on another dataset ({len(calib)} TPOTs) | {_pct(med)} | {_abs_pct(mean_abs)} | "
              f"{_abs_pct(max_abs)} | — |", ""]
    # what if: the shared fit on other GPUs
    full = fit_roofline(specs, a100, [[r] for r in rows], fit=A100_FITS[MAIN_FIT])
    gpus = ("A100-80GB", "H100", "H200", "L40S")
    lines += ["## 3. What if: the same deployment on GPUs nobody measured", "",
              f"The shared A100 fit on all 16 TPOTs ({_fitted(full)}) moved to other presets with "
              "`RooflineFit.latency_for(hardware=...)`: predicted TPOT in ms at batch 1 and, in brackets, the "
              "decode step of 32 sequences on 512 tokens each. The per-layer overhead is the framework's time "
              "on the host, so it moves unchanged; these are predictions, not measurements.", "",
              "| model | " + " | ".join(gpus) + " |", "|---|" + "---|" * len(gpus)]
    for name in WHAT_IF:
        cells = []
        for g in gpus:
            try:
                m = full.latency_for(ModelSpec.preset(name), g)
            except ValueError:
                cells.append("does not fit")
                continue
            one, many = m.step_ms([1], [0]), m.step_ms([1] * 32, [512] * 32)
            cells.append(f"{one:.1f} ({many:.1f})")
            table.append(["what-if", name, g, 1, one, many, 0.0, _fitted(full)])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")


def measure_host(threads: int) -> int:
    """One thread's read bandwidth and float32 matmul throughput, best of several runs (torch, else numpy)."""
    try:
        import torch

        torch.set_num_threads(threads)
        big, sq = torch.ones(64 * 2**20), torch.randn(2048, 2048)
        read, mm, lib = (lambda: big.sum()), (lambda: sq @ sq), f"torch {torch.__version__}"
    except ImportError:
        big, sq = np.ones(64 * 2**20, dtype=np.float32), np.random.default_rng(0).standard_normal((2048, 2048),
                                                                                                  dtype=np.float32)
        read, mm, lib = (lambda: big.sum()), (lambda: sq @ sq), f"numpy {np.__version__}"

    def best(fn, n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return min(out)

    gbps = 64 * 2**20 * 4 / best(read, 7) / 1e9
    tflops = 2 * 2048**3 / best(mm, 5) / 1e12
    print(f"# {lib}, {threads} thread(s): float32 read of 256 MiB and a 2048 x 2048 matrix product, best of 7 / 5")
    print(f'Hardware("this-machine", memory_bandwidth_GBps={gbps:.1f}, peak_tflops={tflops:.4f}, memory_GiB=..., '
          'dtype="fp32", source="measured by experiments/roofline_check/run.py --measure-host")')
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "out"), help="output folder")
    ap.add_argument("--quick", action="store_true", help="the same run (it takes seconds), for the regeneration test")
    add_reference_flag(ap)
    ap.add_argument("--measure-host", action="store_true",
                    help="measure this machine's one-thread bandwidth and float32 throughput instead")
    ap.add_argument("--threads", type=int, default=1, help="with --measure-host: torch threads (default 1)")
    args = ap.parse_args(argv)
    if args.measure_host:
        return measure_host(args.threads)
    check_reference_flag(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table: list = []
    lines = ["# Roofline check: predicted vs measured forward times", "",
             "Written by `python experiments/roofline_check/run.py`. Relative errors are predicted / measured − 1.", ""]
    cpu_part(table, lines)
    a100_part(table, lines)
    atomic_write_text(out / "summary.md", "\n".join(lines))
    numbers = dict(experiment="roofline_check", mode="quick" if args.quick else "full")
    write_experiment_numbers(out, Path(__file__).parent, COLUMNS, table, reference=args.reference, **numbers)
    print("\n".join(lines))
    print(f"wrote {out / 'summary.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
