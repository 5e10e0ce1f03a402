"""The `tl-app` click group: one line and exit code 2 for a user's mistake, 1 for a lost cluster."""
import click

from tl_app.errors import ClusterError, RunRejected, UserError


class _UserErrorExit(click.ClickException):
    """A UserError as click shows it: `error: <message>` on stderr, exit code 2."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class _ClusterErrorExit(_UserErrorExit):
    """A lost worker or a failed launch: one line, exit code 1 (not the user's input)."""

    exit_code = 1


class _Group(click.Group):
    """Turns UserError from any command into one line and exit code 2 (no traceback); ClusterError: exit 1;
    RunRejected: its own exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise _UserErrorExit(str(exc)) from None
        except ClusterError as exc:
            raise _ClusterErrorExit(str(exc)) from None
        except RunRejected as exc:
            error = _UserErrorExit(str(exc))
            error.exit_code = exc.exit_code
            raise error from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="tl_app")
def cli():
    """Transfer learning with Keras: pick a recipe, train it, export it for TF Serving.

    \b
    Typical use:
      tl-app list                       the recipes, where each comes from, what it does
      tl-app config digits              a recipe's config fields and defaults
      tl-app run digits                 train, evaluate, export saved_models/digits/<version>/
      tl-app run fashion_mnist --data-dir /usr/share/datasets/fashion-mnist --epochs 5
      tl-app run my_recipe.py           a recipe of your own, from a file (docs/writing-a-recipe.md)
      tl-app bases                      the image bases and text encoders, and which weights are here
      tl-app run image_folder --data-dir photos/ --set base=efficientnet_lite2 --set weights=offline
      tl-app select image_folder --data-dir photos/   rank the bases on frozen features (or --set base=auto)
      tl-app tune text_folder --data-dir D --trials 30 search hyperparameters (KerasTuner); best.yaml
      tl-app run --config runs/digits/<run-id>/config.json      repeat a run
      tl-app run digits --gate "accuracy>=0.95"                 publish only a model that meets it (exit 3 if not)
      tl-app run text_folder --data-dir D --set adapt_epochs=2  adapt the encoder to your text first (masked LM)
      tl-app evaluate saved_models/digits                        metrics and report of an export
      tl-app serve                      TF Serving's REST (8501) and gRPC (8500) APIs over saved_models/
      tl-app tflite saved_models/digits --quantize int8         an export as TFLite, quantized, evaluated

    Each run writes TensorBoard logs and its resolved config to runs/<recipe>/<run-id>/
    and, unless --no-export, a new SavedModel version to saved_models/<recipe>/<N>/.
    """


def main(argv=None):
    """Console entry point (quiet TensorFlow environment, then the click group)."""
    from tl_app.quiet import set_quiet_environment

    set_quiet_environment()
    cli.main(args=argv, prog_name="tl-app")
