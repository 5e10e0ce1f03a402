"""The float policy of a run: config `mixed_precision` resolved against the device and, on CPUs, the CPU itself.

`mixed_precision=auto` (the default) picks:

- GPU: `mixed_float16`; TPU: `mixed_bfloat16`.
- CPU with AMX (`/proc/cpuinfo` flags `amx_bf16` and `amx_tile`): `mixed_bfloat16` for the workloads measured
  faster in bfloat16 on such a CPU (`AUTO_BFLOAT16`, from `benchmarks/precision.py`), float32 for the others
  (a small MLP, a dense head, MobileNet-style convolutions measured slower).
- any other CPU: float32. bfloat16 without native support is many times slower (tensorflow #42422, #45441);
  `avx512_bf16` alone was not measured faster here, so it does not turn bfloat16 on.

`none` or `float32` forces float32; `bfloat16` and `float16` force those. The choice and its reason are
logged, and `auto`'s result is recorded in the run's config.json (`resolved:`), so `--config` repeats it.
"""
from dataclasses import dataclass
from typing import Optional

from tl_app.errors import UserError

MIXED_PRECISION = ("auto", "bfloat16", "float16", "float32")
CPUINFO = "/proc/cpuinfo"
AMX_FLAGS = frozenset({"amx_bf16", "amx_tile"})
# benchmarks/precision.py on the 2-core Sapphire Rapids host (steps/s, bfloat16 / float32, best of 3 interleaved):
# text_fine_tune (BERT 6x384, seq 128) 1.76; mlp 0.99, image_head 0.95, image_fine_tune (MobileNetV2 96 px) 0.68,
# feature_extraction (MobileNetV2 forward) 0.72.
# text_fine_tune_small (BERT 2x32, seq 64) 0.86: encoders narrower than SMALL_ENCODER_WIDTH stay float32
# (384 measured faster, 32 slower; 128 not measured: float32, the safe side).
AUTO_BFLOAT16 = frozenset({"text_fine_tune"})
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
    if not AMX_FLAGS <= flags:
        return PrecisionChoice("float32", "auto: CPU without AMX (bfloat16 would be emulated, many times slower)")
    if workload in AUTO_BFLOAT16:
        return PrecisionChoice("mixed_bfloat16", f"auto: CPU with AMX, {workload} measured faster in bfloat16")
    what = f"{workload} measured no faster in bfloat16" if workload else "no bfloat16 gain measured for this recipe"
    return PrecisionChoice("float32", f"auto: CPU with AMX, but {what}")


def mixed_precision_policy(setting, device, workload=None, flags=None):
    """The Keras dtype policy name for config `mixed_precision`, or None for float32 (see `choose_precision`).

    Examples:
        >>> mixed_precision_policy("bfloat16", "cpu")
        'mixed_bfloat16'
    """
    policy = choose_precision(setting, device, workload, flags).policy
    return None if policy == "float32" else policy
