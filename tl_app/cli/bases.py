"""`tl-app bases`: every image base and text encoder, what it is, and which weights this machine has for it."""
import re

import click

from tl_app.cli.group import cli

COLUMNS = (("name", "name"), ("kind", "kind"), ("parameters", "params"), ("input", "input"),
           ("feature_size", "features"), ("preprocessing", "preprocessing"), ("weights", "weights here"),
           ("licence", "licence"))


def _cell(key, value):
    if value is None:
        return "?"
    if key == "parameters":
        return f"{value / 1e6:.1f}M"
    return str(value)


def _short(key, text):
    """The table's form of a cell: licences and weight sources without their parentheses (`bases NAME` has them)."""
    if key == "weights":
        text = re.sub(r"\(not prepared[^)]*\)", "(not prepared)", text)
        text = re.sub(r"\((?:Keras download|keras-hub preset)[^)]*\)", "(download)", text)
        text = text.replace("download (download)", "download")
    if key in ("licence", "preprocessing"):
        text = re.sub(r" \([^)]*\)", "", text)
    return text


def _rows(kind):
    rows = []
    if kind in ("all", "image"):
        from tl_app.image.backbones.describe import backbone_rows

        rows += backbone_rows()
    if kind in ("all", "text"):
        from tl_app.text.encoders import encoder_rows

        rows += encoder_rows()
    return rows


@cli.command("bases")
@click.argument("name", required=False)
@click.option("--kind", type=click.Choice(["all", "image", "text"]), default="all", show_default=True,
              help="Only image bases (`--set base=NAME`) or text encoders (`--set preset=NAME`).")
def bases_command(name, kind):
    """List the pretrained bases: image backbones (--set base=NAME) and text encoders (--set preset=NAME).

    \b
    Each row: parameters, input size, the length of the feature vector the head sees,
    the preprocessing inside the model, which weights this machine has (an offline asset
    prepared by `tl-app assets`, a download, or none) and their licences.
    `tl-app bases NAME` details one base or encoder.
    """
    if name:
        from tl_app.errors import UserError
        from tl_app.image.backbones import all_backbones

        if name in all_backbones():
            from tl_app.image.backbones.describe import describe_backbone

            details = describe_backbone(name)
        else:
            from tl_app.text.encoders import describe_encoder

            try:
                details = describe_encoder(name)
            except UserError as exc:
                raise UserError(f"{exc} Image bases: {', '.join(sorted(all_backbones()))}.") from None
        width = max(len(k) for k in details)
        for key, value in details.items():
            click.echo(f"{key.ljust(width)}  {_cell(key, value)}")
        return
    rows = _rows(kind)
    table = [[header for _, header in COLUMNS]] + [[_short(key, _cell(key, row.get(key))) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
