"""The encoder `text_mlm` adapts, saved as a local keras-hub preset directory, versioned like exports.

    saved_models/<recipe>-encoder/<version>/
        config.json, model.weights.h5     the BertBackbone (what every text recipe loads)
        task.json, task.weights.h5        the BertMaskedLM and its head (a later text_mlm run continues it)
        preprocessor.json, tokenizer.json, assets/tokenizer/vocabulary.txt
        metadata.json                     keras-hub's
        tl_app_encoder.json               where it came from, its perplexity, and every file's size and sha256

Written to a hidden temporary directory and renamed to the next free version
only when complete; nothing is overwritten. `--set preset=DIR` accepts it in
every text recipe (`text.presets`), after `check_encoder_directory` has found
every file the manifest lists, at its size and checksum, and names the first
one that is missing or damaged. Directories without `saved_model.pb` are not
models to a model server: TF Serving and `tl-app serve` pass them by.
"""
import hashlib
import json
import os

from tl_app import log
from tl_app.errors import UserError
from tl_app.pipeline.context import Stage

MANIFEST = "tl_app_encoder.json"
SUFFIX = "-encoder"
TMP_PREFIX = ".tmp-encoder-"  # a preset being written (owner-tagged: the next save removes a dead one's)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory):
    """{relative path: {bytes, sha256}} of every file under `directory` but the manifest."""
    found = {}
    for folder, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, directory)
            if rel != MANIFEST:
                found[rel] = {"bytes": os.path.getsize(path), "sha256": _sha256(path)}
    return dict(sorted(found.items()))


def save_encoder_preset(model, preprocessor, export_dir, name, about):
    """Save `model` (a BertMaskedLM) and `preprocessor` as the next version under `export_dir/<name>-encoder/`.

    Args:
        model: the adapted `BertMaskedLM` (its backbone is the encoder).
        preprocessor: its `BertMaskedLMPreprocessor` (tokenizer and vocabulary).
        export_dir: `--export-dir` (default saved_models).
        name: the recipe's name.
        about: what goes into the manifest besides the files (source preset, pooling, config, metrics).

    Returns:
        the new version's directory.
    """
    import keras_hub

    from tl_app.export.savedmodel import publish, staged_version

    # An uncompiled copy sharing the encoder: a compiled model's task.weights.h5 would also hold the
    # optimizer's moments (twice the model's size), which a preset has no use for.
    clean = keras_hub.models.BertMaskedLM(model.backbone, preprocessor=None)
    clean.get_layer("mlm_head").set_weights(model.get_layer("mlm_head").get_weights())
    model_dir = os.path.join(export_dir, name + SUFFIX)
    with staged_version(model_dir, TMP_PREFIX) as tmp:
        clean.save_to_preset(tmp)
        preprocessor.save_to_preset(tmp)
        manifest = {"made_by": "tl_app text_mlm", **about, "files": _files(tmp)}
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        return publish(tmp, model_dir)


def is_encoder_directory(directory):
    return os.path.isfile(os.path.join(directory, MANIFEST))


def check_encoder_directory(directory):
    """The manifest of a directory `text_mlm` saved; UserError naming the first file missing or damaged."""
    again = "save it again with `tl-app run text_mlm`, or name another encoder (--set preset=...)"
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--set preset={directory}: its {MANIFEST} cannot be read ({exc}); {again}.") from None
    for rel, expected in files.items():
        path = os.path.join(directory, rel)
        if not os.path.isfile(path):
            raise UserError(f"--set preset={directory}: the encoder text_mlm saved there is incomplete: {rel} is"
                            f" missing; {again}.")
        size = os.path.getsize(path)
        if size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            raise UserError(f"--set preset={directory}: {rel} is damaged ({size:,} bytes, text_mlm wrote"
                            f" {expected['bytes']:,} with another checksum); {again}.")
    return manifest


class EncoderExport(Stage):
    """`text_mlm`'s export: the adapted encoder as a keras-hub preset directory (skipped with `--no-export`)."""

    name = "export"

    def enabled(self, ctx):
        return ctx.options.export and ctx.is_chief

    def run(self, ctx):
        recipe = ctx.recipe
        about = {"source": recipe.resolved.description, "pooling": recipe.pooling(),
                 "config": ctx.config_dict, "metrics": ctx.metrics}
        ctx.export_path = save_encoder_preset(ctx.model, recipe.preprocessor, ctx.options.export_dir, recipe.name, about)
        log.info(f"encoder saved as a keras-hub preset: {ctx.export_path} (any text recipe: --set preset={ctx.export_path})")
