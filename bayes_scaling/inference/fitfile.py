"""Reading and writing fit files: one netCDF ``xarray.DataTree`` per fit, with a ``bayes_scaling_kind``."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import xarray as xr

from bayes_scaling.errors import FitFileError

KINDS = {"transfer": "transfer fit", "scratch": "from-scratch loss-law fit", "joint": "joint fit"}


def write_tree(tree: xr.DataTree, path: str | PathLike, **groups: xr.Dataset) -> Path:
    """Write ``tree`` plus the data ``groups`` (e.g. the input table) to ``path`` (h5netcdf)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = tree.copy()
    for name, ds in groups.items():
        tree[name] = xr.DataTree(ds)
    tree.to_netcdf(path, engine="h5netcdf")
    return path


def read_tree(path: str | PathLike, kind: str | None = None, groups: tuple[str, ...] = ()) -> xr.DataTree:
    """Load a fit file into memory; a :class:`FitFileError` when it is missing, unreadable, of another kind
    than ``kind`` (if given) or lacks one of ``groups``."""
    path = Path(path)
    if not path.is_file():
        raise FitFileError(f"fit file not found: {path}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            tree = tree.load()
    except Exception as exc:  # noqa: BLE001 - any reader failure is reported the same way
        raise FitFileError(f"cannot read {path} as a netCDF fit file: {exc}") from None
    found = tree.attrs.get("bayes_scaling_kind")
    missing = [g for g in groups if g not in tree.children]
    if kind is not None and (found != kind or missing):
        raise FitFileError(f"{path} is not a bayes_scaling {KINDS[kind]} (kind {found!r}, expected {kind!r}"
                           + (f"; missing group(s) {', '.join(missing)}" if missing else "") + ")")
    return tree


def without(tree: xr.DataTree, *groups: str) -> xr.DataTree:
    """A copy of ``tree`` without the data ``groups`` (kept apart from the draws once loaded)."""
    tree = tree.copy()
    for g in groups:
        del tree[g]
    return tree
