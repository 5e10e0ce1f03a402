"""Learning-rate schedules of one training phase, with optional linear warmup.

The step is the optimizer's iteration count, which starts at 0 in each phase
(every phase gets a fresh optimizer) and is restored on resume, so a resumed
phase continues its schedule where it stopped.

With peak rate `lr`, `W` warmup steps, `T = total_steps - W` decay steps,
`t = step - W` and floor `min_lr`:

- warmup (step < W): `lr * step / W`
- constant: `lr`
- step: `lr * decay_rate ** floor(t / (step_every_epochs * steps_per_epoch))`
- exponential: `lr * decay_rate ** (t / steps_per_epoch)` (decay_rate per epoch)
- cosine: `min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * min(t, T) / T))`
- linear: `lr - (lr - min_lr) * min(t, T) / T`

step and exponential never go below `min_lr` either.
"""
import math

import keras

from tl_app.config import SCHEDULES


@keras.saving.register_keras_serializable(package="tl_app")
class PhaseSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One phase's learning rate as a function of its step.

    Args:
        kind: one of `SCHEDULES`.
        learning_rate: the peak rate (reached at the end of warmup).
        total_steps: the phase's steps (epochs * steps_per_epoch).
        steps_per_epoch: batches per epoch (for step and exponential).
        warmup_steps: linear warmup from 0 over this many steps.
        decay_rate: factor per decay period (step, exponential).
        step_every_epochs: epochs per decay period (step).
        min_learning_rate: the floor every decay ends at or stays above.

    Examples:
        >>> s = PhaseSchedule("linear", 1e-3, total_steps=100, steps_per_epoch=10, warmup_steps=10)
        >>> round(float(s(5)), 6), round(float(s(10)), 6), round(float(s(100)), 6)
        (0.0005, 0.001, 0.0)
    """

    def __init__(self, kind, learning_rate, total_steps, steps_per_epoch, warmup_steps=0, decay_rate=0.5,
                 step_every_epochs=1, min_learning_rate=0.0):
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}")
        self.kind = kind
        self.learning_rate = float(learning_rate)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.warmup_steps = int(warmup_steps)
        self.decay_rate = float(decay_rate)
        self.step_every_epochs = max(1, int(step_every_epochs))
        self.min_learning_rate = float(min_learning_rate)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        lr, floor = self.learning_rate, self.min_learning_rate
        warm = float(self.warmup_steps)
        t = ops.maximum(step - warm, 0.0)
        horizon = float(max(1, self.total_steps - self.warmup_steps))
        if self.kind == "constant":
            decayed = ops.convert_to_tensor(lr, "float32") + 0.0 * t
        elif self.kind == "step":
            period = float(self.step_every_epochs * self.steps_per_epoch)
            decayed = ops.maximum(lr * ops.power(self.decay_rate, ops.floor(t / period)), floor)
        elif self.kind == "exponential":
            decayed = ops.maximum(lr * ops.power(self.decay_rate, t / float(self.steps_per_epoch)), floor)
        elif self.kind == "cosine":
            progress = ops.minimum(t, horizon) / horizon
            decayed = floor + (lr - floor) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        else:  # linear
            progress = ops.minimum(t, horizon) / horizon
            decayed = lr - (lr - floor) * progress
        if self.warmup_steps <= 0:
            return decayed
        warming = lr * step / warm
        return ops.where(step < warm, warming, decayed)

    def get_config(self):
        return {
            "kind": self.kind,
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_steps": self.warmup_steps,
            "decay_rate": self.decay_rate,
            "step_every_epochs": self.step_every_epochs,
            "min_learning_rate": self.min_learning_rate,
        }
