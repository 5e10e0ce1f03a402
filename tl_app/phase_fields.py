"""Which config fields drive which training phase, so that no field a user sets is silently ignored.

A recipe declares, per phase, the field holding the phase's epochs (0 skips it) and,
for each setting the phase trains with (learning rate, optimizer, schedule, weight
decay, clipping, ...), the config field it reads: `Recipe.phase_fields()`. The text
recipes' head phase reads `optimizer`, their fine-tune phase `fine_tune_optimizer`.
`tl-app config` shows the phases of every field, and a run warns about a field it
sets that no phase of that run reads, naming the field that does.

Examples:
    >>> head = PhaseFields.reading("head", "epochs")
    >>> fine = PhaseFields.reading("fine_tune", "epochs", optimizer="sgd_optimizer")
    >>> fine.options(type("Cfg", (), {"sgd_optimizer": "sgd"})())
    {'optimizer': 'sgd'}
    >>> field_phases([head, fine])["optimizer"], field_phases([head, fine])["sgd_optimizer"]
    (['head'], ['fine_tune'])
"""
from dataclasses import dataclass
from typing import Dict

# What a phase trains with, each read from a config field (engine.optimizers resolves the optimizer ones).
SETTINGS = ("learning_rate", "optimizer", "lr_schedule", "warmup_steps", "warmup_fraction", "decay_rate",
            "step_every_epochs", "min_learning_rate", "weight_decay", "momentum", "clipnorm", "clipvalue")


@dataclass
class PhaseFields:
    """The config fields one training phase reads.

    Args:
        name: the phase (as `Phase.name`; a family of phases such as gradual unfreezing's shares one).
        epochs: the field holding its epochs; 0 skips the phase.
        settings: setting -> the config field it is read from (`{"optimizer": "fine_tune_optimizer", ...}`);
            recipe-specific settings of the phase map to their field too (`{"fine_tune_at": "fine_tune_at"}`).
    """

    name: str
    epochs: str
    settings: Dict[str, str]

    @classmethod
    def reading(cls, name, epochs, **fields):
        """A phase reading every setting of `SETTINGS` from the field of its name, except `fields` (setting=field)."""
        return cls(name, epochs, {**{setting: setting for setting in SETTINGS}, **fields})

    def fields(self):
        return [self.epochs, *dict.fromkeys(self.settings.values())]

    def runs(self, config):
        return (getattr(config, self.epochs) or 0) > 0

    def options(self, config):
        """`Phase.options`: the optimizer settings this phase reads from a field of another name."""
        return {setting: getattr(config, field) for setting, field in self.settings.items()
                if setting != field and setting in SETTINGS and setting != "learning_rate"}


def field_phases(phases):
    """`{field: [phase names]}`: which phases read each field.

    Args:
        phases: a recipe's `phase_fields()`.
    """
    found = {}
    for phase in phases:
        for name in phase.fields():
            found.setdefault(name, []).append(phase.name)
    return found


def _skipped(phase, config):
    return f"phase '{phase.name}' is skipped ({phase.epochs}={getattr(config, phase.epochs)})"


def _read_elsewhere(setting, running, config):
    """'phase X reads F' for the running phases that read `setting` from another field."""
    return [f"phase '{p.name}' reads {p.settings[setting]} ({getattr(config, p.settings[setting])!r})"
            for p in running if setting in p.settings]


def unused_fields(recipe):
    """`(warnings, notes)` about the fields the run's config changed from the recipe's defaults.

    A warning for a field that no phase of this run reads (its phase is skipped); a note for one that drives
    only some of the phases while another reads the same setting from another field. Each names the field
    that does drive it.

    Args:
        recipe: a Recipe with its resolved config.
    """
    cfg, default = recipe.config, recipe.default_config()
    phases = recipe.phase_fields()
    running = [p for p in phases if p.runs(cfg)]
    epochs_fields = {p.epochs for p in phases}
    warnings, notes = [], []
    for name, readers in field_phases(phases).items():
        if name in epochs_fields or getattr(cfg, name) == getattr(default, name):
            continue
        setting = next(s for p in phases for s, f in p.settings.items() if f == name and p.name in readers)
        used_by = [p for p in running if p.name in readers]
        others = _read_elsewhere(setting, [p for p in running if p.name not in readers], cfg)
        value = f"{name}={getattr(cfg, name)!r}"
        if not used_by:
            skipped = "; ".join(_skipped(p, cfg) for p in phases if p.name in readers)
            warnings.append(f"{value} is used by no phase of this run: {skipped}"
                            + (f"; {'; '.join(others)}" if others else "") + ".")
        elif others:
            shown = ", ".join(f"'{p.name}'" for p in used_by)
            notes.append(f"{value} drives phase {shown} only; {'; '.join(others)} (tl-app config shows which"
                         " phase each field drives).")
    return warnings, notes
