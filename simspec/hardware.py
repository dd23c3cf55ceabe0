"""Hardware facts: what a roofline needs to know about the machine a model runs on.

A forward of a language model at small batch reads every weight once and does two
FLOPs per weight per new token.  Whether it is limited by memory or by arithmetic
depends on two numbers of the machine: how many bytes per second its memory
delivers and how many FLOPs per second its matrix units do.  A :class:`Hardware`
holds them (and the memory's size, for the KV cache), with where they come from.

The presets (:data:`HARDWARE`) are vendors' datasheet figures for one GPU each, dense
(no 2:4 sparsity) 16-bit matrix throughput, and one CPU core measured here:

>>> hardware_preset("h100")
Hardware('H100', 3350 GB/s, 989.5 TFLOP/s bf16, 80 GiB)
>>> round(hardware_preset("A100-80GB").ridge_flops_per_byte, 1)   # FLOPs per byte where compute takes over
153.0
>>> hardware_preset("MI300X")
Traceback (most recent call last):
...
simspec.errors.InvalidParameterError: no hardware preset 'MI300X'; the presets are A100-80GB, H100, H200, L40S, CPU (or build one: Hardware(name, memory_bandwidth_GBps, peak_tflops, memory_GiB, source))

Units: ``memory_bandwidth_GBps`` in GB/s (10⁹ bytes per second, the vendors' unit),
``peak_tflops`` in 10¹² FLOP/s at the precision ``dtype`` names, ``memory_GiB`` in
GiB (HBM comes in binary sizes: the vendors' "80GB" is 80 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ._checks import lookup_preset, positive
from .errors import InvalidParameterError

__all__ = ["Hardware", "HARDWARE", "hardware_preset"]


@dataclass(frozen=True)
class Hardware:
    """One machine's memory bandwidth, peak matrix throughput and memory size, with their source.

    ``peak_tflops`` is the dense throughput at ``dtype`` (bf16/fp16 tensor cores for a GPU);
    a roofline divides it, and the bandwidth, by an efficiency fitted to measurements
    (:func:`simspec.fit_roofline`), since no kernel reaches a datasheet's peak.
    """

    name: str
    memory_bandwidth_GBps: float
    peak_tflops: float
    memory_GiB: float
    source: str = ""
    dtype: str = "bf16"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidParameterError(f"a Hardware needs a name, got {self.name!r}")
        object.__setattr__(self, "memory_bandwidth_GBps", positive(
            "memory_bandwidth_GBps", self.memory_bandwidth_GBps,
            "the memory bandwidth in GB/s (10^9 bytes per second), e.g. 2039 for an A100-80GB"))
        object.__setattr__(self, "peak_tflops", positive(
            "peak_tflops", self.peak_tflops,
            "the dense matrix throughput in TFLOP/s (10^12 FLOP per second), e.g. 312 for an A100's bf16"))
        object.__setattr__(self, "memory_GiB", positive(
            "memory_GiB", self.memory_GiB, "the accelerator's memory in GiB, e.g. 80"))

    @property
    def bytes_per_s(self) -> float:
        """Memory bandwidth in bytes per second."""
        return self.memory_bandwidth_GBps * 1e9

    @property
    def flops_per_s(self) -> float:
        """Peak matrix throughput in FLOP per second."""
        return self.peak_tflops * 1e12

    @property
    def memory_bytes(self) -> float:
        """Memory size in bytes."""
        return self.memory_GiB * 2**30

    @property
    def ridge_flops_per_byte(self) -> float:
        """The roofline's ridge point: a kernel doing fewer FLOPs per byte moved is memory-bound."""
        return self.flops_per_s / self.bytes_per_s

    def replace(self, **changes) -> "Hardware":
        """A copy with some fields changed (validated again): ``hw.replace(memory_bandwidth_GBps=1935)``."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        return (f"Hardware({self.name!r}, {self.memory_bandwidth_GBps:g} GB/s, {self.peak_tflops:g} TFLOP/s "
                f"{self.dtype}, {self.memory_GiB:g} GiB)")


_NVIDIA = "NVIDIA datasheet"
#: Hardware presets, by name.  Each ``source`` names the document its numbers come from.
HARDWARE: dict[str, Hardware] = {h.name: h for h in (
    Hardware("A100-80GB", 2039.0, 312.0, 80.0,
             f"{_NVIDIA} 'NVIDIA A100 Tensor Core GPU' (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf, "
             "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
             "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): A100 80GB SXM, GPU memory bandwidth 2,039 GB/s, "
             "BF16 Tensor Core 312 TFLOPS (624 with sparsity), 80GB HBM2e. The PCIe card has 1,935 GB/s: "
             "hardware_preset('A100-80GB').replace(memory_bandwidth_GBps=1935)"),
    Hardware("H100", 3350.0, 989.5, 80.0,
             f"{_NVIDIA} 'NVIDIA H100 Tensor Core GPU' (https://resources.nvidia.com/en-us-tensor-core/"
             "nvidia-tensor-core-gpu-datasheet): H100 SXM, GPU memory bandwidth 3.35 TB/s, BF16 Tensor Core "
             "1,979 TFLOPS with sparsity, so 989.5 dense; 80GB HBM3"),
    Hardware("H200", 4800.0, 989.5, 141.0,
             f"{_NVIDIA} 'NVIDIA H200 Tensor Core GPU' (https://www.nvidia.com/en-us/data-center/h200/): H200 SXM, "
             "GPU memory bandwidth 4.8 TB/s, BF16 Tensor Core 1,979 TFLOPS with sparsity, so 989.5 dense (the "
             "H100's GH100 die); 141GB HBM3e"),
    Hardware("L40S", 864.0, 362.05, 48.0,
             f"{_NVIDIA} 'NVIDIA L40S GPU for AI and Graphics' (https://resources.nvidia.com/en-us-l40s/"
             "l40s-datasheet-28413): GPU memory bandwidth 864 GB/s, BF16 Tensor Core 362.05 TFLOPS (733 with "
             "sparsity), 48GB GDDR6 with ECC"),
    Hardware("CPU", 38.0, 0.095, 24.0,
             "one core of the machine simspec's CPU profiles were measured on (experiments/real_pair: an AMD EPYC "
             "of the Zen 5 family, family 26, as a KVM guest with 2 cores and 24 GiB; one torch thread, float32). "
             "No vendor publishes one core's bandwidth, so both numbers are measured: 38 GB/s is one thread "
             "reading a 256 MiB float32 tensor (torch.sum, best of 5), 0.095 TFLOP/s one thread's float32 matrix "
             "product of 2048 x 2048 matrices (torch, MKL; best of 3), both on an idle core; "
             "python experiments/roofline_check/run.py --measure-host measures them again on any machine. "
             "On a loaded shared machine both drop by up to 2.5x",
             dtype="fp32"),
)}




def hardware_preset(name: str) -> Hardware:
    """The preset called ``name`` (case, spaces, dashes and dots ignored: ``"h100"``, ``"a100 80gb"``)."""
    if isinstance(name, Hardware):
        return name
    return lookup_preset(name, HARDWARE, "hardware", "build one: Hardware(name, memory_bandwidth_GBps, "
                                                     "peak_tflops, memory_GiB, source)")
