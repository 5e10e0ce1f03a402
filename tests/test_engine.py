"""The training engine's fine-tuning controls: optimizers, schedules, regularization, losses, phases."""
import dataclasses
import json
import math

import numpy as np
import pytest

from tl_app.config import RecipeConfig
from tl_app.errors import UserError
from tl_app.recipe import FeatureCache, Phase


def _lr_at(optimizer, step):
    """The optimizer's learning rate when its iteration count is `step`."""
    optimizer.iterations.assign(step)
    return float(np.array(optimizer.learning_rate))


# ---- schedules: each formula at chosen steps -----------------------------------

STEPS_PER_EPOCH, EPOCHS, PEAK = 10, 5, 0.1  # 50 steps in the phase


def _optimizer(**fields):
    from tl_app.engine.optimizers import build_optimizer

    cfg = dataclasses.replace(RecipeConfig(), **fields)
    return build_optimizer(cfg, Phase("p", EPOCHS, PEAK), STEPS_PER_EPOCH)


@pytest.mark.parametrize("schedule, expected", [
    ("constant", lambda s: PEAK),
    ("step", lambda s: PEAK * 0.5 ** math.floor(s / (2 * STEPS_PER_EPOCH))),
    ("exponential", lambda s: PEAK * 0.5 ** (s / STEPS_PER_EPOCH)),
    ("cosine", lambda s: 0.5 * PEAK * (1 + math.cos(math.pi * s / 50))),
    ("linear", lambda s: PEAK * (1 - s / 50)),
])
def test_schedule_follows_its_formula(schedule, expected):
    optimizer = _optimizer(lr_schedule=schedule, decay_rate=0.5, step_every_epochs=2)
    for step in (0, 7, 19, 20, 33, 50):
        assert _lr_at(optimizer, step) == pytest.approx(expected(step), rel=1e-5, abs=1e-9), (schedule, step)


def test_warmup_fraction_then_cosine_to_the_floor():
    # 20% of 50 steps = 10 warmup steps from 0, then cosine over the remaining 40 down to min_learning_rate.
    optimizer = _optimizer(lr_schedule="cosine", warmup_fraction=0.2, min_learning_rate=0.01)
    assert _lr_at(optimizer, 0) == pytest.approx(0.0)
    assert _lr_at(optimizer, 5) == pytest.approx(PEAK * 5 / 10)
    assert _lr_at(optimizer, 10) == pytest.approx(PEAK)
    assert _lr_at(optimizer, 30) == pytest.approx(0.01 + (PEAK - 0.01) * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert _lr_at(optimizer, 50) == pytest.approx(0.01)
    assert _lr_at(optimizer, 80) == pytest.approx(0.01)  # past the end: stays at the floor


def test_warmup_steps_win_over_fraction_and_constant_warms_up():
    optimizer = _optimizer(warmup_steps=4, warmup_fraction=0.5)
    assert [_lr_at(optimizer, s) for s in (0, 2, 4, 40)] == pytest.approx([0.0, PEAK / 2, PEAK, PEAK])


def test_phase_options_override_the_config():
    """The contract the text recipe relies on: Phase(options=...) resolved by optim.option."""
    import keras

    from tl_app.engine.optimizers import build_optimizer, option

    phase = Phase("fine_tune", 10, 2e-5, options={"optimizer": "adamw", "weight_decay": 0.01, "lr_schedule": "linear",
                                                  "warmup_fraction": 0.1, "clipnorm": 1.0})
    cfg = RecipeConfig(optimizer="sgd", lr_schedule="constant")
    assert option(cfg, phase, "optimizer") == "adamw" and option(cfg, phase, "momentum") == 0.9
    optimizer = build_optimizer(cfg, phase, steps_per_epoch=10)  # 100 steps, 10 of warmup
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.01) and optimizer.clipnorm == 1.0
    assert _lr_at(optimizer, 5) == pytest.approx(2e-5 * 0.5)
    assert _lr_at(optimizer, 55) == pytest.approx(2e-5 * (1 - 45 / 90))


def test_sgd_momentum_and_clipvalue():
    import keras

    optimizer = _optimizer(optimizer="sgd", momentum=0.8, clipvalue=0.5)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.8) and optimizer.clipvalue == 0.5


def test_adamw_decays_kernels_but_not_biases_or_layer_norm():
    import keras

    from tl_app.engine.optimizers import build_optimizer

    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    outputs = keras.layers.LayerNormalization(name="norm")(x)
    model = keras.Model(inputs, outputs)
    for v in model.weights:
        v.assign(np.ones(v.shape, np.float32))
    cfg = RecipeConfig(optimizer="adamw", weight_decay=0.1)
    optimizer = build_optimizer(cfg, Phase("p", 1, 0.5), model=model)
    # Zero gradients: Adam's step is 0, so any change is the decoupled weight decay (w -= w * wd * lr).
    optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in model.trainable_variables])
    after = {v.path: float(np.array(v).flat[0]) for v in model.trainable_variables}
    assert after["dense/kernel"] == pytest.approx(1 - 0.1 * 0.5)
    assert after["dense/bias"] == 1.0 and after["norm/gamma"] == 1.0 and after["norm/beta"] == 1.0


# ---- losses, class weights, regularization ------------------------------------

def test_label_smoothing_on_sparse_labels_matches_the_formula():
    import keras

    from tl_app.engine.losses import training_loss

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    labels = np.array([0, 2])
    loss = training_loss(keras.losses.SparseCategoricalCrossentropy(), 0.3)
    smoothed = np.eye(3)[labels] * 0.7 + 0.3 / 3
    expected = np.mean(-np.sum(smoothed * np.log(probs), axis=1))
    assert float(loss(labels, probs)) == pytest.approx(expected, rel=1e-5)
    assert training_loss(keras.losses.SparseCategoricalCrossentropy(), 0.0).__class__ is \
        keras.losses.SparseCategoricalCrossentropy
    with pytest.raises(UserError, match="label smoothing"):
        training_loss(keras.losses.MeanSquaredError(), 0.1)


def test_balanced_class_weights():
    from tl_app.engine.datasets import balanced_class_weights

    weights = balanced_class_weights([0, 0, 0, 1], num_classes=3)
    assert weights == {0: pytest.approx(4 / (2 * 3)), 1: pytest.approx(4 / (2 * 1)), 2: 1.0}


def test_head_regularizer_reaches_the_digits_model():
    from tl_app.recipes.digits import Digits
    from tl_app.engine.regularizers import head_regularizer

    assert head_regularizer(RecipeConfig()) is None
    recipe = Digits(dataclasses.replace(Digits.default_config(), l2=0.01))
    data = recipe.load_data()
    model = recipe.build_model(data)
    assert len(model.losses) == 2  # hidden and output kernels
    plain = Digits(Digits.default_config()).build_model(data)
    assert plain.losses == []
    with pytest.raises(UserError, match="negative"):
        head_regularizer(RecipeConfig(l1=-1.0))


def test_bad_optimizer_and_schedule_values_fail_early():
    from tl_app.engine.optimizers import check_options

    with pytest.raises(UserError, match="optimizer 'rmsprop'.*adam, adamw, sgd"):
        check_options(RecipeConfig(optimizer="rmsprop"))
    with pytest.raises(UserError, match="lr_schedule 'poly'"):
        check_options(RecipeConfig(lr_schedule="poly"))
    with pytest.raises(UserError, match="phase 'ft'"):
        check_options(RecipeConfig(), [Phase("ft", 1, 0.1, options={"lr_schedule": "cyclic"})])
    with pytest.raises(UserError, match="class_weight"):
        check_options(RecipeConfig(class_weight="balanced"))


# ---- whole runs (in process) --------------------------------------------------

def _run(workdir, recipe_cls=None, loop="auto", **fields):
    from tl_app.recipes.digits import Digits
    from tl_app.pipeline import RunOptions, run_recipe

    recipe_cls = recipe_cls or Digits
    cfg = dataclasses.replace(recipe_cls.default_config(), **fields)
    return run_recipe(recipe_cls(cfg), RunOptions(logdir=str(workdir / "runs"), export=False, loop=loop,
                                                  strategy="one_device"))


def _steps(run_dir, split="train", tag="epoch_loss"):
    """The TensorBoard steps logged for `tag`, sorted (event files of several phases load in name order);
    a step logged twice is there twice."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / split) if not isinstance(run_dir, str) else f"{run_dir}/{split}")
    acc.Reload()
    return sorted(e.step for e in acc.Tensors(tag)) if tag in acc.Tags()["tensors"] else []


def test_seed_makes_cpu_runs_repeatable(workdir):
    # (deterministic=true, i.e. op determinism, is process-wide: tests/test_resume.py covers it in a subprocess)
    first = _run(workdir, epochs=2, seed=7)
    second = _run(workdir, epochs=2, seed=7)
    other = _run(workdir, epochs=2, seed=8)
    assert first.metrics == second.metrics
    assert first.metrics != other.metrics


def test_each_run_sets_op_determinism_as_its_config_says(workdir):
    # Op determinism is process-wide: a run without it, after one with it (a tune's trials, the API), turns it off.
    from tensorflow.python.framework import config as tf_config

    _run(workdir, epochs=1, deterministic=True)
    assert tf_config.is_op_determinism_enabled()
    _run(workdir, epochs=1)
    assert not tf_config.is_op_determinism_enabled()


def test_early_stopping_stops_the_phase_and_records_it(workdir):
    # learning_rate 0: val_loss never improves, so patience 1 stops after the second epoch.
    result = _run(workdir, epochs=10, learning_rate=0.0, early_stopping_patience=1)
    assert _steps(result.run_dir) == [0, 1]
    complete = json.loads(open(f"{result.run_dir}/complete.json").read())
    assert complete["epochs"] == 2


def _two_phase_recipe():
    """Digits with a head phase on cached features, then the whole model with per-phase AdamW options."""
    import keras

    from tl_app.recipes.digits import Digits

    class Recipe(Digits):
        name = "two_phase_digits"

        def build_model(self, data):
            model = super().build_model(data)
            self.hidden = model.layers[3]  # Dense(hidden)
            feats = keras.Model(model.input, model.layers[4].output)  # up to Dropout
            head_in = keras.Input(feats.output.shape[1:])
            self.cache = FeatureCache(extractor=feats, head=keras.Model(head_in, model.layers[-1](head_in)))
            return model

        def phases(self, model):
            def freeze_hidden(m):
                self.hidden.trainable = False

            def unfreeze(m):
                self.hidden.trainable = True

            return [Phase("head", 2, 1e-2, prepare=freeze_hidden, feature_cache=self.cache, augment=False),
                    Phase("fine_tune", 2, 1e-3, prepare=unfreeze, options={"optimizer": "adamw", "weight_decay": 0.01,
                                                                           "lr_schedule": "linear", "warmup_fraction": 0.1,
                                                                           "clipnorm": 1.0})]

    return Recipe


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_phases_continue_epochs_in_both_loops(workdir, loop):
    result = _run(workdir, _two_phase_recipe(), loop=loop)
    assert _steps(result.run_dir) == [0, 1, 2, 3]
    assert _steps(result.run_dir, "validation") == [0, 1, 2, 3]
    assert len(_steps(result.run_dir, tag="epoch_learning_rate")) == 4
    assert result.metrics["accuracy"] > 0.8


def test_custom_loop_matches_fit_on_one_device(workdir):
    fit = _run(workdir, epochs=4, loop="fit")
    custom = _run(workdir, epochs=4, loop="custom")
    assert abs(fit.metrics["accuracy"] - custom.metrics["accuracy"]) < 0.03
    assert fit.metrics["loss"] == pytest.approx(custom.metrics["loss"], rel=0.03)
    assert set(_tags(fit.run_dir)) == set(_tags(custom.run_dir))


def _skewed_digits():
    """Digits whose train split keeps every example of class 0 and one in eight of the others."""
    import tensorflow as tf

    from tl_app.recipes.digits import Digits

    class SkewedDigits(Digits):
        name = "skewed_digits"

        def load_data(self):
            data = super().load_data()
            keep = lambda i, xy: tf.logical_or(xy[1] == 0, i % 8 == 0)  # noqa: E731
            data.train = data.train.enumerate().filter(keep).map(lambda i, xy: xy)
            return data

    return SkewedDigits


def test_custom_loop_weights_the_loss_as_fit_does(workdir, capsys):
    """Balanced weights on skewed data (class 0: 0.2, the others about 2): a loop that ignored them, or weighted
    otherwise than fit, would log another training loss and train another model."""
    fields = {"epochs": 4, "class_weight": "auto", "label_smoothing": 0.1, "l2": 1e-4}
    fit = _run(workdir, _skewed_digits(), loop="fit", **fields)
    assert "class weights (balanced from the train labels): 0: 0.20, 1: 2.17" in capsys.readouterr().out
    custom = _run(workdir, _skewed_digits(), loop="custom", **fields)
    assert _scalars(custom.run_dir) == pytest.approx(_scalars(fit.run_dir), rel=0.03)
    assert _scalars(custom.run_dir, "validation") == pytest.approx(_scalars(fit.run_dir, "validation"), rel=0.03)
    assert custom.metrics["loss"] == pytest.approx(fit.metrics["loss"], rel=0.03)


def _scalars(run_dir, split="train", tag="epoch_loss"):
    """The values logged for `tag`, epoch by epoch."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(f"{run_dir}/{split}")
    acc.Reload()
    return [float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def _tags(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for split in ("train", "validation"):
        acc = EventAccumulator(f"{run_dir}/{split}")
        acc.Reload()
        tags += [f"{split}/{t}" for t in acc.Tags()["tensors"]]
    return tags


def test_in_memory_data_is_batched_by_index_in_the_same_order_as_shuffling_elements():
    import numpy as np
    import tensorflow as tf

    from tl_app.data.arrays import sliced_from, tensor_slices
    from tl_app.engine.datasets import batched

    x, y = np.arange(300, dtype="float32").reshape(100, 3), np.arange(100)
    fast, plain = tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices((x, y))
    assert sliced_from(fast) is not None and sliced_from(fast.map(lambda a, b: (a, b))) is None  # a new dataset
    for shuffle in (True, False):
        ours, theirs = (batched(d, 8, shuffle=shuffle, seed=3, shuffle_buffer=30) for d in (fast, plain))
        for _ in range(2):  # two epochs: reshuffled alike
            got, want = [[b[1].numpy() for b in d] for d in (ours, theirs)]
            assert len(got) == 13 and all((g == w).all() for g, w in zip(got, want))
        assert all((b[0].numpy()[:, 0] == 3 * b[1].numpy()).all() for b in ours)  # inputs stay with their labels
    assert int(batched(fast, 8, drop_remainder=True).cardinality()) == 12



def test_batches_run_without_the_autotune_thread_whose_wait_stalls_every_epoch_boundary():
    """Dropping a tf.data iterator waits for its autotuning thread's next optimization (up to 60 s, no CPU used);
    Keras drops one per epoch. The batches the Trainer fits and evaluates (in memory or streamed) have it off,
    and still give every element once per epoch."""
    import numpy as np
    import tensorflow as tf

    from tl_app.data.arrays import tensor_slices
    from tl_app.engine.datasets import batched

    x, y = np.arange(60, dtype="float32").reshape(20, 3), np.arange(20)
    for data in (tensor_slices((x, y)), tf.data.Dataset.from_tensor_slices((x, y))):
        for shuffle in (True, False):
            ds = batched(data, 8, shuffle=shuffle, seed=1)
            assert ds.options().autotune.enabled is False
            assert sorted(np.concatenate([b[1].numpy() for b in ds])) == list(range(20))
