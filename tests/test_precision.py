"""mixed_precision=auto: the float policy keyed on device, CPU flags and workload; logged, recorded, repeated."""
import dataclasses
import json

import pytest

from tl_app.engine import precision
from tl_app.errors import UserError

AMX = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}
AVX512_BF16 = {"avx2", "avx512f", "avx512_bf16"}  # native bf16 dot products, no AMX tiles (AMD Zen 4)
AVX2 = {"avx2", "fma"}  # no native bfloat16: emulated


def test_auto_keys_on_device_cpu_flags_and_workload():
    choose = precision.choose_precision
    assert choose("auto", "gpu").policy == "mixed_float16"
    assert choose("auto", "tpu").policy == "mixed_bfloat16"
    assert choose("auto", "cpu", "text_fine_tune", AMX).policy == "mixed_bfloat16"
    assert choose("auto", "cpu", "text_fine_tune", AVX512_BF16).policy == "mixed_bfloat16"
    assert choose("auto", "cpu", "text_fine_tune", AVX2).policy == "float32"
    assert "without AMX or AVX512_BF16" in choose("auto", "cpu", "text_fine_tune", AVX2).reason
    assert "CPU with AMX" in choose("auto", "cpu", "text_fine_tune", AMX).reason  # AMX first: it has avx512_bf16 too
    assert "CPU with AVX512_BF16" in choose("auto", "cpu", "text_fine_tune", AVX512_BF16).reason
    for flags in (AMX, AVX512_BF16):  # measured slower in bfloat16 (or never measured): float32
        for slower in ("mlp", "image_fine_tune", "text_fine_tune_small", None):
            assert choose("auto", "cpu", slower, flags).policy == "float32"
    for forced in (None, "float32"):  # none / float32 force float32 even where auto would pick bfloat16
        assert choose(forced, "gpu", "text_fine_tune", AMX).policy == "float32"
    assert choose("bfloat16", "cpu", "mlp", AVX2).policy == "mixed_bfloat16"  # asked for: given, not second-guessed
    assert choose("auto", "cpu", "text_fine_tune", AMX).setting == "bfloat16"
    assert precision.mixed_precision_policy("auto", "cpu", "mlp", AMX) is None
    with pytest.raises(UserError, match="TPUs compute in bfloat16"):
        choose("float16", "tpu")
    with pytest.raises(UserError, match="mixed_precision=fp8"):
        choose("fp8", "gpu")


def test_cpu_flags_come_from_the_flags_line_of_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 amx_bf16 amx_tile\n\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "amx_bf16", "amx_tile"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()  # unreadable: no bfloat16 on CPU


def _prepared(workdir, monkeypatch, flags, **fields):
    """A digits context through `prepare`, on a simulated CPU, as if its training were a text fine-tune."""
    from tl_app.pipeline import RunContext, RunOptions
    from tl_app.pipeline.prepare import Prepare
    from tl_app.recipes.digits import Digits

    class TextLike(Digits):
        precision_workload = "text_fine_tune"

    monkeypatch.setattr(precision, "cpu_flags", lambda path=precision.CPUINFO: frozenset(flags))
    cfg = dataclasses.replace(Digits.default_config(), epochs=1, **fields)
    options = RunOptions(logdir=str(workdir / "runs"), export_dir=str(workdir / "saved_models"),
                         strategy="one_device", run_id=f"p{len(flags)}{fields.get('mixed_precision', '')}")
    ctx = RunContext(TextLike(cfg), options)
    with ctx.closing:
        Prepare().run(ctx)
        import keras

        policy = keras.mixed_precision.global_policy().name
    assert keras.mixed_precision.global_policy().name == "float32"  # the run leaves the caller's policy
    return ctx, policy, json.loads((workdir / "runs" / "digits" / options.run_id / "config.json").read_text())


def test_auto_is_the_default_picks_bfloat16_on_amx_and_records_it_for_config(workdir, monkeypatch):
    from tl_app import api, config_file
    from tl_app.recipes.digits import Digits

    assert Digits.default_config().mixed_precision == "auto"
    ctx, policy, saved = _prepared(workdir, monkeypatch, AMX)
    assert policy == "mixed_bfloat16" and ctx.precision.reason.startswith("auto: CPU with AMX")
    assert saved["mixed_precision"] == "auto" and saved["resolved"]["mixed_precision"] == "bfloat16"
    # --config of that run repeats bfloat16 on any host; --set mixed_precision=auto resolves again.
    path = workdir / "runs" / "digits" / ctx.options.run_id / "config.json"
    assert api.resolve_config(Digits, config_file.load(str(path))).mixed_precision == "bfloat16"
    assert api.resolve_config(Digits, config_file.load(str(path)),
                              ["mixed_precision=auto"]).mixed_precision == "auto"


def test_a_cpu_without_native_bfloat16_stays_float32_and_none_forces_it(workdir, monkeypatch):
    ctx, policy, saved = _prepared(workdir, monkeypatch, AVX2)
    assert policy == "float32" and "without AMX or AVX512_BF16" in ctx.precision.reason
    assert saved["resolved"]["mixed_precision"] == "float32"
    ctx, policy, saved = _prepared(workdir, monkeypatch, AMX, mixed_precision=None)
    assert policy == "float32" and "mixed_precision" not in saved.get("resolved", {})  # nothing auto to record


def test_a_narrow_text_encoder_stays_float32_on_bfloat16_cpus(tmp_path):
    from tl_app.text.presets import ResolvedPreset, encoder_width

    hf, hub = tmp_path / "hf", tmp_path / "hub"
    hf.mkdir(), hub.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384}))
    (hub / "config.json").write_text(json.dumps({"class_name": "BertBackbone", "config": {"hidden_dim": 32}}))
    widths = [encoder_width(ResolvedPreset(str(path), "")) for path in (hf, hub)]
    assert widths == [384, 32]
    assert encoder_width(ResolvedPreset("bert_tiny_en_uncased", "")) == 128  # keras-hub name: text.encoders' table
    assert encoder_width(ResolvedPreset("hf://someone/model", "")) is None
    for flags in (AMX, AVX512_BF16):
        choices = [precision.choose_precision("auto", "cpu", precision.text_workload(w), flags).policy
                   for w in (*widths, 128, None)]
        assert choices == ["mixed_bfloat16", "float32", "float32", "mixed_bfloat16"]  # unknown width: taken as wide
