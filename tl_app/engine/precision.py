"""The float policy of a run: config `mixed_precision` resolved against the device and, on CPUs, the CPU itself.

`mixed_precision=auto` (the default) picks:

- GPU: `mixed_float16`; TPU: `mixed_bfloat16`.
- CPU with native bfloat16 (`BFLOAT16_CPUS`, by `/proc/cpuinfo` flags: AMX tiles `amx_bf16` + `amx_tile`, or
  else `avx512_bf16` dot products): `mixed_bfloat16` for the workloads measured faster in bfloat16 on such a
  CPU (from `benchmarks/precision.py`), float32 for the others (a small MLP, a dense head, MobileNet-style
  convolutions measured slower).
- any other CPU: float32. bfloat16 without native support is emulated, many times slower for convolutions
  (tensorflow #42422, #45441; MobileNetV2 fine-tuning 0.22-0.26x on an AVX2-only CPU).

`none` or `float32` forces float32; `bfloat16` and `float16` force those. The choice and its reason are
logged, and `auto`'s result is recorded in the run's config.json (`resolved:`), so `--config` repeats it.
"""
from dataclasses import dataclass
from typing import Optional

from tl_app.errors import UserError

MIXED_PRECISION = ("auto", "bfloat16", "float16", "float32")
CPUINFO = "/proc/cpuinfo"


@dataclass(frozen=True)
class BFloat16Cpu:
    """A kind of CPU that computes bfloat16 natively, and the workloads measured faster in bfloat16 on it.

    Args:
        name: what the run log calls it (`AMX`).
        flags: the `/proc/cpuinfo` flags that identify it (all of them).
        faster: the `benchmarks/precision.py` cases that trained faster in bfloat16 there (`auto` turns
            bfloat16 on for these only).

    Examples:
        >>> BFLOAT16_CPUS[0].name
        'AMX'
    """

    name: str
    flags: frozenset
    faster: frozenset


# First match wins: Sapphire Rapids has avx512_bf16 too, and its AMX figures are the ones that apply.
# benchmarks/precision.py, steps/s bfloat16 / float32, batch 32, best of 3 interleaved:
# - AMX (2-core Sapphire Rapids): text_fine_tune (BERT 6x384, seq 128) 1.76 (1.43 on a quiet host, 2026-12-08); mlp 0.99, image_head 0.95,
#   image_fine_tune (MobileNetV2 96 px) 0.68, feature_extraction (MobileNetV2 forward) 0.72.
# - AVX512_BF16 without AMX (2-core AMD EPYC, Zen 4, quiet): text_fine_tune 1.51; mlp 0.98, image_head 0.95,
#   image_fine_tune 0.78, feature_extraction 0.83 (and a BBC News fine-tune epoch: docs/speed.md).
# text_fine_tune_small (BERT 2x32, seq 64) 0.86 on AMX, 0.92 on Zen 4: encoders narrower than
# SMALL_ENCODER_WIDTH stay float32 (384 measured faster, 32 slower; 128 not measured: float32, the safe side).
BFLOAT16_CPUS = (
    BFloat16Cpu("AMX", frozenset({"amx_bf16", "amx_tile"}), frozenset({"text_fine_tune"})),
    BFloat16Cpu("AVX512_BF16", frozenset({"avx512_bf16"}), frozenset({"text_fine_tune"})),
)
SMALL_ENCODER_WIDTH = 256


def text_workload(width):
    """The workload of fine-tuning a text encoder `width` hidden units wide (None: unknown, taken as wide)."""
    return "text_fine_tune_small" if width is not None and width < SMALL_ENCODER_WIDTH else "text_fine_tune"


@dataclass(frozen=True)
class PrecisionChoice:
    """The float policy of a run and why.

    Args:
        policy: the Keras dtype policy name (`float32`, `mixed_bfloat16`, `mixed_float16`).
        reason: one line saying why (logged).

    Examples:
        >>> PrecisionChoice("float32", "requested").setting
        'float32'
    """

    policy: str
    reason: str

    @property
    def setting(self):
        """The `mixed_precision` value that repeats this choice (`float32`, `bfloat16`, `float16`)."""
        return self.policy.replace("mixed_", "")


def cpu_flags(path=CPUINFO):
    """The feature flags of this machine's CPU (`flags` line of /proc/cpuinfo); empty when unreadable.

    Args:
        path: the cpuinfo file.

    Examples:
        >>> isinstance(cpu_flags(), frozenset)
        True
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass  # not Linux: no flags known, so no bfloat16 on CPU (the safe side)
    return frozenset()


def choose_precision(setting, device, workload=None, flags=None):
    """The PrecisionChoice for config `mixed_precision=setting` on `device`.

    Args:
        setting: None or `float32` (float32), `auto`, `bfloat16` or `float16`.
        device: `cpu`, `gpu` or `tpu`.
        workload: the `benchmarks/precision.py` case the recipe's training resembles (`Recipe.precision_workload`),
            e.g. `text_fine_tune`; None: not measured (float32 on CPU).
        flags: the CPU's flags (default: read /proc/cpuinfo); tests pass them to simulate a CPU.

    Examples:
        >>> choose_precision("auto", "gpu").policy
        'mixed_float16'
        >>> choose_precision("auto", "cpu", "text_fine_tune", flags={"avx2"}).policy
        'float32'
        >>> choose_precision("auto", "cpu", "text_fine_tune", flags={"avx512f", "avx512_bf16"}).policy
        'mixed_bfloat16'
    """
    if setting is None or setting == "float32":
        return PrecisionChoice("float32", "requested" if setting else "mixed_precision=none")
    if setting not in MIXED_PRECISION:
        raise UserError(f"--set mixed_precision={setting}: choose one of {', '.join(MIXED_PRECISION)} or none.")
    if setting == "float16" and device == "tpu":
        raise UserError("--set mixed_precision=float16: TPUs compute in bfloat16; use bfloat16 or auto.")
    if setting != "auto":
        return PrecisionChoice(f"mixed_{setting}", "requested")
    if device == "gpu":
        return PrecisionChoice("mixed_float16", "auto: GPU")
    if device == "tpu":
        return PrecisionChoice("mixed_bfloat16", "auto: TPU")
    flags = cpu_flags() if flags is None else frozenset(flags)
    cpu = bfloat16_cpu(flags)
    if cpu is None:
        return PrecisionChoice("float32", "auto: CPU without AMX or AVX512_BF16 (bfloat16 would be emulated, "
                                          "many times slower)")
    if workload in cpu.faster:
        return PrecisionChoice("mixed_bfloat16", f"auto: CPU with {cpu.name}, {workload} measured faster in bfloat16")
    what = f"{workload} measured no faster in bfloat16" if workload else "no bfloat16 gain measured for this recipe"
    return PrecisionChoice("float32", f"auto: CPU with {cpu.name}, but {what}")


def bfloat16_cpu(flags):
    """The BFloat16Cpu these CPU flags describe (the first of `BFLOAT16_CPUS` whose flags they hold), or None.

    Args:
        flags: a set of `/proc/cpuinfo` flags.

    Examples:
        >>> bfloat16_cpu({"avx2", "avx512f", "avx512_bf16"}).name
        'AVX512_BF16'
        >>> bfloat16_cpu({"avx2"}) is None
        True
    """
    return next((cpu for cpu in BFLOAT16_CPUS if cpu.flags <= frozenset(flags)), None)


def apply_precision(setting, device, workload=None):
    """Choose the float policy (`choose_precision`) and make it Keras's global one; returns the PrecisionChoice.

    Call it after the data (a text recipe's workload depends on its encoder) and before building the model (layers
    read the global policy when built).

    Examples:
        >>> apply_precision("float32", "cpu").policy
        'float32'
    """
    import keras

    choice = choose_precision(setting, device, workload)
    keras.mixed_precision.set_global_policy(choice.policy)
    return choice


def mixed_precision_policy(setting, device, workload=None, flags=None):
    """The Keras dtype policy name for config `mixed_precision`, or None for float32 (see `choose_precision`).

    Examples:
        >>> mixed_precision_policy("bfloat16", "cpu")
        'mixed_bfloat16'
    """
    policy = choose_precision(setting, device, workload, flags).policy
    return None if policy == "float32" else policy
