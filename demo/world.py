"""The offline Sentinel-2 world: a synthetic landscape, its L2A COGs, a STAC catalog, points and truth.

Layout of the output folder (a public interface):

- ``catalog.json``: static STAC root, Earth Search v1 flavour: collection ``sentinel-2-l2a``, asset keys
  ``blue, green, red, nir, swir16, swir22, scl``; ``pc/catalog.json``: the same COGs with Planetary
  Computer keys ``B02, B03, B04, B08, B11, B12, SCL``.
- ``cogs/<item id>/<key>.tif``: one COG per band and date (uint16, nodata 0; SCL uint8), 512 tiles, deflate.
- ``aoi.geojson``, ``classes.yaml``, ``train.gpkg`` / ``validation.gpkg`` (EPSG:4326 points, ``label``),
  ``truth.tif`` (uint8 classes, nodata 255) and ``training.yaml`` (a ``lulc train --config`` recipe).
- with ``seasons=True``: three more items, spring, summer and autumn of ``SEASONAL_YEAR`` (the same patches,
  their phenology), and ``training-seasons.yaml``, the same recipe with one composite per season.
- with ``change=True``: two more items, summer of ``CHANGE_YEAR``, of the land after real change (towns grown
  into fields and forest, forest felled; ``landscape.develop``), and ``truth-<CHANGE_YEAR>.tif``, its truth.
  ``truth.tif`` is the land of every earlier item.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import yaml
from rasterio.transform import Affine

from demo.landscape import CLASS_TABLE, develop, make_landscape
from demo.points import (
    footprint,
    near,
    random_sample,
    stratified_sample,
    write_aoi,
    write_points,
)
from demo.sensor import (
    ACQUISITIONS,
    BANDS,
    CHANGE_ACQUISITIONS,
    CHANGE_YEAR,
    SEASONAL_ACQUISITIONS,
    SEASONAL_YEAR,
    SEASONS,
    Scene,
    band_resolution,
    draw_surface,
    extend_surface,
    render_scenes,
)
from demo.stac import CATALOG_ID, COLLECTION_ID, item_id, make_catalog, save_catalog, world_grid
from demo.stac_pc import make_pc_catalog
from lulc.classes import NODATA
from lulc.cog import CogOptions, atomic_path, write_cog
from lulc.errors import InputError
from lulc.grid import OutputGrid
from lulc.signals import held

DEFAULT_SIZE = 1024
"""Default grid width in 10 m pixels (10.24 km): generated in seconds, classified in a minute."""
MIN_SIZE = 128
MAX_SIZE = 4096
"""The generator holds every scene's bands whole in memory: 0.5 GB at 1,024 px, 1.4 GB at 2,048 (peak RSS,
measured), about 5 GB at 4,096; a larger world does not fit a laptop."""
EPSG = 32654
"""UTM zone 54N; the grid lies in MGRS tile 54SVE, around 36.0 N 140.0 E (Kanto plain, Japan)."""
ORIGIN = (410_000.0, 3_990_000.0)
"""Upper-left corner of the grid (metres, EPSG:32654)."""
TRAIN_PER_CLASS = 100
VALIDATION_COUNT = 1500
VALIDATION_MIN_DISTANCE = 5
"""Pixels between any validation point and the nearest training point."""
# Validation points: VALIDATION_COUNT, or one per 200 AOI pixels in small worlds (so training points
# still find room away from them).

REFLECTANCE_COG = CogOptions(overview_resampling="average", predictor=2)
CLASS_COG = CogOptions(overview_resampling="mode")
"""Class rasters (truth, SCL): mode overviews, so no overview pixel holds a class that is not there."""


@dataclass(frozen=True)
class DemoWorld:
    """Where a generated demo world's files are, and what it contains."""

    root: Path
    catalog: Path
    """Earth Search v1 flavour (the default)."""
    pc_catalog: Path
    """The same items with Planetary Computer asset keys and metadata."""
    aoi: Path
    classes: Path
    train_points: Path
    validation_points: Path
    truth: Path
    training_config: Path
    cogs_dir: Path
    datetime_window: str
    """``start/end`` (RFC 3339) covering every acquisition but the seasonal year's."""
    epsg: int
    item_ids: tuple[str, ...]
    size: int
    seed: int
    seasonal_config: Path | None = None
    """``training-seasons.yaml``: spring, summer and autumn composites of ``SEASONAL_YEAR`` (seasons=True)."""
    later_truth: Path | None = None
    """``truth-<CHANGE_YEAR>.tif``: the land in ``CHANGE_YEAR``, after the change (change=True)."""
    later_datetime_window: str | None = None
    """``start/end`` covering the ``CHANGE_YEAR`` items (change=True)."""


LAYOUT = frozenset(
    {
        "catalog.json",
        "sentinel-2-l2a",
        "pc",
        "cogs",
        "aoi.geojson",
        "classes.yaml",
        "train.gpkg",
        "validation.gpkg",
        "truth.tif",
        "training.yaml",
        "training-seasons.yaml",
        f"truth-{CHANGE_YEAR}.tif",
    }
)
"""Every name the demo world writes at the top of its folder."""


def _check_target(out_dir: Path, size: int, asset_base_url: str | None) -> None:
    if size < MIN_SIZE or size > MAX_SIZE or size % 2:
        raise InputError(
            f"demo world size must be an even number of pixels from {MIN_SIZE} to {MAX_SIZE}, got {size}"
        )
    if asset_base_url is not None:
        parsed = urlsplit(asset_base_url)
        # products review: ftp:// (no reader's allow-list takes it) and ?query (hrefs a?b/cogs/...) passed
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise InputError(
                "--asset-base-url must be an absolute http(s) URL without query or fragment, such as "
                f"http://host/path, got {asset_base_url!r}"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir():
        # Only an earlier (possibly interrupted) demo world may be overwritten, never anything else.
        foreign = sorted(
            p.name for p in out_dir.iterdir() if p.name not in LAYOUT and not p.name.startswith(".")
        )
        if foreign:
            raise InputError(
                f"{out_dir} holds files that are not part of a demo world ({', '.join(foreign[:5])}); "
                "refusing to write there: choose an empty or new folder"
            )


def _clear_earlier_world(out_dir: Path) -> None:
    """Remove an earlier demo world's files when its catalog says it is one; else leave the folder as it is.

    A world made again without ``--seasons`` or ``--change`` kept the earlier one's seasonal recipe, whose
    items it no longer catalogs ("no items"), and its change truth. Only a folder whose ``catalog.json`` is
    the demo world's is cleared: a world interrupted before its catalog is written over in place, as before,
    and a user's own ``cogs/`` (a name ``_check_target`` lets through) is never deleted.
    """
    try:
        catalog = json.loads((out_dir / "catalog.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(catalog, dict) or catalog.get("id") != CATALOG_ID:
        return
    for name in sorted(LAYOUT):
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def generate(
    out_dir: Path,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    asset_base_url: str | None = None,
    seasons: bool = False,
    change: bool = False,
) -> DemoWorld:
    """Generate the demo world in ``out_dir`` (byte-identical for the same size and seed).

    Args:
        out_dir: target folder; created if missing. Must be empty or hold a previous demo world.
        size: grid width and height in 10 m pixels (even, >= 128).
        seed: seed of every random choice.
        asset_base_url: if given, asset hrefs are ``URL/cogs/<item>/<band>.tif`` instead of relative paths.
        seasons: also the seasonal year's three items and ``training-seasons.yaml`` (everything else stays
            byte-identical: the seasonal scenes draw from their own random stream).
        change: also two items of ``CHANGE_YEAR`` after real land-cover change and their truth raster
            (everything else byte-identical but the catalogs: their own random stream too).

    Returns:
        The paths and facts of the generated world.
    """
    out_dir = Path(out_dir)
    _check_target(out_dir, size, asset_base_url)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Made whole in a hidden folder first: a world that fails or is interrupted leaves the earlier one as it
    # was (review: it was cleared first, and Ctrl-C or a too large size left an empty folder).
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    try:
        world = _generate_into(staging, size, seed, asset_base_url, seasons, change)
        with held():
            _clear_earlier_world(out_dir)
            _move_into(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _rerooted(world, staging, out_dir)


STAGING_PREFIX = ".demo-world-"
CATALOG_NAMES = ("pc", "sentinel-2-l2a", "catalog.json")
"""Moved into place last, in this order: a world whose move fails part-way has no catalog.json."""


def _move_into(source: Path, target: Path) -> None:
    """Rename everything in ``source`` into ``target``; a folder already there gets the contents instead.

    After ``_clear_earlier_world`` only a folder that was not a finished demo world still holds our names (an
    interrupted world of an earlier version, or a user's own ``cogs/``): its files are written over, none
    of its other files deleted, as before.
    """
    last = {name: rank for rank, name in enumerate(CATALOG_NAMES, start=1)}
    for path in sorted(source.iterdir(), key=lambda p: (last.get(p.name, 0), p.name)):
        there = target / path.name
        if path.is_dir() and there.is_dir() and not there.is_symlink():
            _move_into(path, there)
        else:
            os.replace(path, there)


def _rerooted(world: DemoWorld, old: Path, new: Path) -> DemoWorld:
    """``world`` with each of its paths under ``old`` moved to the same place under ``new``."""
    changes: dict[str, Any] = {
        f.name: new / value.relative_to(old)
        for f in dataclasses.fields(world)
        if isinstance(value := getattr(world, f.name), Path)
    }
    return dataclasses.replace(world, **changes)


def _generate_into(
    out_dir: Path, size: int, seed: int, asset_base_url: str | None, seasons: bool, change: bool
) -> DemoWorld:
    """The world of ``generate``, written into the new, empty folder ``out_dir``."""
    rng = np.random.default_rng(seed)

    landscape = make_landscape(rng, size)
    surface = draw_surface(rng, landscape)
    scenes = render_scenes(rng, landscape, ACQUISITIONS, surface)
    base_scenes = list(scenes)
    if seasons:
        seasonal_rng = np.random.default_rng([seed, SEASONAL_YEAR])
        scenes += render_scenes(seasonal_rng, landscape, SEASONAL_ACQUISITIONS, surface)
    later = None
    if change:
        change_rng = np.random.default_rng([seed, CHANGE_YEAR])
        later = develop(change_rng, landscape)
        later_surface = extend_surface(change_rng, surface, later)
        scenes += render_scenes(change_rng, later, CHANGE_ACQUISITIONS, later_surface)

    bounds = (ORIGIN[0], ORIGIN[1] - size * 10.0, ORIGIN[0] + size * 10.0, ORIGIN[1])
    grid = world_grid(EPSG, ORIGIN, size)

    cogs_dir = out_dir / "cogs"
    for scene in scenes:
        _write_scene(cogs_dir / item_id(scene), scene, grid)

    truth = _write_truth(out_dir / "truth.tif", landscape.classes)
    later_truth = _write_truth(out_dir / f"truth-{CHANGE_YEAR}.tif", later.classes) if later else None
    classes_path = out_dir / "classes.yaml"
    _write_text(classes_path, CLASS_TABLE.to_yaml())

    # The AOI leaves a margin of 1/16 of the grid on every side; all points lie inside it.
    margin = size // 16
    inside = np.zeros((size, size), dtype=bool)
    inside[margin:-margin, margin:-margin] = True
    aoi_bounds = (
        bounds[0] + margin * 10.0,
        bounds[1] + margin * 10.0,
        bounds[2] - margin * 10.0,
        bounds[3] - margin * 10.0,
    )
    aoi = write_aoi(out_dir / "aoi.geojson", footprint(EPSG, aoi_bounds))
    inside_points = np.zeros_like(inside)
    inside_points[margin + 1 : -margin - 1, margin + 1 : -margin - 1] = True
    # Validation first, as a simple random sample of the AOI (so its accuracy estimates the map's);
    # training points then come from what lies at least VALIDATION_MIN_DISTANCE pixels away.
    count = min(VALIDATION_COUNT, int(inside_points.sum()) // 200)
    validation_pixels = random_sample(rng, inside_points, count)
    away = inside_points & ~near(validation_pixels, inside_points.shape, VALIDATION_MIN_DISTANCE)
    train_pixels = stratified_sample(rng, landscape.classes, away, TRAIN_PER_CLASS)
    train = write_points(out_dir / "train.gpkg", rng, train_pixels, landscape.classes, EPSG, ORIGIN, "train")
    validation = write_points(
        out_dir / "validation.gpkg", rng, validation_pixels, landscape.classes, EPSG, ORIGIN, "validation"
    )

    times = sorted(scene.acquisition.when for scene in base_scenes)
    window = f"{times[0]:%Y-%m-%d}T00:00:00Z/{times[-1]:%Y-%m-%d}T23:59:59Z"
    config = out_dir / "training.yaml"
    _write_text(config, _training_yaml(window))
    later_window = None
    if later is not None:
        later_times = sorted(a.when for a in CHANGE_ACQUISITIONS)
        later_window = f"{later_times[0]:%Y-%m-%d}T00:00:00Z/{later_times[-1]:%Y-%m-%d}T23:59:59Z"
    seasonal_config: Path | None = None
    if seasons:
        seasonal_config = out_dir / "training-seasons.yaml"
        _write_text(seasonal_config, _seasonal_yaml())
    # The catalogs last, catalog.json at the very end (pystac writes it after its items): a world
    # interrupted or failed part-way has none, so nothing takes it for a world, and the next demo-data
    # writes over it in place.
    pc_catalog = save_catalog(make_pc_catalog(scenes, grid, asset_base_url), out_dir / "pc")
    catalog_path = save_catalog(make_catalog(scenes, grid, asset_base_url), out_dir)
    return DemoWorld(
        root=out_dir,
        catalog=catalog_path,
        pc_catalog=pc_catalog,
        aoi=aoi,
        classes=classes_path,
        train_points=train,
        validation_points=validation,
        truth=truth,
        training_config=config,
        cogs_dir=cogs_dir,
        datetime_window=window,
        epsg=EPSG,
        item_ids=tuple(item_id(scene) for scene in scenes),
        size=size,
        seed=seed,
        seasonal_config=seasonal_config,
        later_truth=later_truth,
        later_datetime_window=later_window,
    )


def _write_truth(path: Path, classes: npt.NDArray[np.uint8]) -> Path:
    """A truth raster: class COG with the class colours, nodata 255."""
    return write_cog(
        path,
        classes,
        crs=f"EPSG:{EPSG}",
        transform=Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]),
        nodata=NODATA,
        options=CLASS_COG,
        colormap=CLASS_TABLE.colormap(),
        band_descriptions=["land cover"],
    )


def _write_scene(folder: Path, scene: Scene, grid: OutputGrid) -> None:
    for band in BANDS:
        resolution = band_resolution(band)
        write_cog(
            folder / f"{band}.tif",
            scene.dn[band],
            crs=grid.crs,
            transform=grid.at_resolution(resolution).transform,
            nodata=0,
            options=REFLECTANCE_COG,
            band_descriptions=[band],
        )
    write_cog(
        folder / "scl.tif",
        scene.scl,
        crs=grid.crs,
        transform=grid.at_resolution(20).transform,
        nodata=0,
        options=CLASS_COG,
        band_descriptions=["scl"],
    )


def _training_yaml(window: str) -> str:
    recipe = {
        "name": "demo",
        "stac": "catalog.json",
        "collection": COLLECTION_ID,
        "aoi": "aoi.geojson",
        "datetime": window,
        "max_cloud_cover": 100,
        "bands": ["blue", "green", "red", "nir", "swir16", "swir22"],
        "indices": ["ndvi", "ndwi", "ndbi"],
        "points": "train.gpkg",
        "label_field": "label",
        "classes": "classes.yaml",
        "models": ["rf", "svm", "dt"],
        "seed": 0,
        "resolution": 10,
        "composite": "median",
    }
    header = "# A ready `lulc train --config` recipe for the demo world; paths are relative to this file.\n"
    return header + yaml.safe_dump(recipe, sort_keys=False)


def _seasonal_yaml() -> str:
    """The demo recipe with one composite per season of the seasonal year instead of one over all dates."""
    recipe = yaml.safe_load(_training_yaml("x"))
    recipe["name"] = "demo-seasons"
    recipe["datetime"] = str(SEASONAL_YEAR)
    recipe["seasons"] = [{"name": name, "start": start, "end": end} for name, start, end in SEASONS]
    header = (
        "# The demo recipe with one composite per season of the seasonal year; paths relative to this\n"
        "# file. `lulc classify --datetime YEAR` then reads the same seasons of YEAR.\n"
    )
    return header + yaml.safe_dump(recipe, sort_keys=False)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, suffix=path.suffix) as tmp:
        tmp.write_text(text)
