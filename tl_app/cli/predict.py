"""`tl-app predict`: the top classes of an export for image files, texts or CSV rows."""
import click

from tl_app.cli.group import cli


@cli.command("predict")
@click.argument("model_dir")
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("--top-k", "top_k", type=click.IntRange(1), default=3, show_default=True, help="Classes shown per input.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per input) instead of lines.")
@click.option("--url", metavar="http://HOST:8501",
              help="Send the request to a running `tl-app serve` or TF Serving instead of loading the model here "
                   "(MODEL_DIR may then be just the model's name).")
def predict_command(model_dir, inputs, top_k, as_json, url):
    """Classify INPUTs with the export MODEL_DIR (saved_models/<model>: its newest version, or .../<model>/<N>).

    \b
    INPUT depends on the export:
      image exports   image files (JPEG, PNG, BMP, GIF)
      text exports    strings, or a text file of one text a line
      digits, mnist   CSV files of pixel values, one example a row (64 values for digits)
    """
    import json

    from tl_app.serve.predict import format_rows, predict_model

    rows = predict_model(model_dir, list(inputs), top_k=top_k, url=url)
    click.echo(json.dumps(rows, indent=1) if as_json else format_rows(rows))
