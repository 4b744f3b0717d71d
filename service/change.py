"""``lulc change``: from-to change between two maps of one model on one grid.

Writes, in an output folder (files appear only once complete, ``item.json`` last):

* ``change.tif``: a categorical COG whose value codes the pair (from class, to class) as
  ``from_index * n + to_index`` over the class table's order, with a colour table (unchanged pixels in a pale
  tint of their class, changed pixels in the colour of the class they became), the pair names as
  ``CLASS_<code>`` band tags and a ``change.tif.aux.xml`` with GDAL category names;
* ``transitions.json``: the transition matrix in pixels and hectares (rows: from, columns: to);
* ``transitions.svg``: the matrix as a figure (no plotting library needed);
* given validation points labelled at both dates, ``change_areas.json``: every from-to class's area and the
  total changed area with 95 % confidence intervals (Olofsson et al. 2014 on the change strata,
  ``service.change_areas``; a sample made by ``lulc design`` on a change folder brings its own strata);
* ``item.json``: the STAC item, ``derived_from`` both runs.

Both maps are read block by block; where either is nodata the change is nodata.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
import pystac
import rasterio
from rasterio.windows import Window

from lulc.areas import area_cells
from lulc.classes import NODATA, ClassTable, LandCoverClass
from lulc.cog import CogOptions, translate_to_cog
from lulc.errors import InputError
from lulc.gdal_env import gdal_env
from lulc.grid import UNMAPPED, crs_text
from lulc.olofsson import read_sample_design
from lulc.progress import NullProgress, Progress
from service.change_areas import change_area_estimate, read_change_points
from service.output import (
    QML_TYPE,
    class_tags,
    dump_json,
    file_fields,
    move_into_place,
    pam_asset,
    staging_dir,
    staging_profile,
    write_class_sidecars,
)
from service.product_item import (
    CLASSIFICATION,
    COG_TYPE,
    RASTER,
    derived_link,
    product_item,
    stac_classes,
)
from service.publish import ITEM_NAME
from service.run_folder import RunFolder, open_run, read_band
from service.sieve import grid_blocks

CHANGE_NAME = "change.tif"
CHANGE_AUX = f"{CHANGE_NAME}.aux.xml"
CHANGE_QML = "change.qml"
"""QGIS applies ``<raster name>.qml`` beside a raster as its default style: the from-to legend."""
MATRIX_NAME = "transitions.json"
AREAS_NAME = "change_areas.json"
FIGURE_NAME = "transitions.svg"
CHANGE_COG = CogOptions(overview_resampling="mode")
MAX_CLASSES = 15
"""A from-to code must fit in a byte beside nodata 255: at most 15 x 15 = 225 pairs."""


@dataclass(frozen=True)
class ChangeResult:
    """The change product's folder, its transition matrix (pixels, from x to) and item."""

    out_dir: Path
    pixels: npt.NDArray[np.int64]
    item: dict[str, Any]
    matrix: dict[str, Any]
    areas: dict[str, Any] | None = None


def check_comparable(a: RunFolder, b: RunFolder) -> None:
    """Raise InputError naming what differs unless both maps share a class table and a grid."""
    if a.classes.values != b.classes.values or a.classes.names != b.classes.names:
        raise InputError(
            f"the maps have different class tables: {a.path} has {_table_text(a.classes)}, "
            f"{b.path} has {_table_text(b.classes)}; compare maps of one model"
        )
    ga, gb = a.grid, b.grid
    if ga.crs != gb.crs:
        first = crs_text(ga.crs)
        again = f"with --crs {first}" if ga.crs.to_authority() is not None else "in the first's CRS"
        raise InputError(
            f"the maps have different CRSs: {first} and {crs_text(gb.crs)}; classify the second again "
            f"{again} and the first's --aoi, so that their pixels line up"
        )
    if (ga.height, ga.width) != (gb.height, gb.width) or not ga.transform.almost_equals(gb.transform, 1e-9):
        raise InputError(
            f"the maps have different grids: {ga.describe()} and {gb.describe()}; classify both with the "
            "same --aoi and --crs, so that their pixels line up"
        )
    if abs(a.pixel_area_m2 - b.pixel_area_m2) > 1e-6 * a.pixel_area_m2:
        raise InputError(
            f"the maps' stats.json give different pixel areas: {a.pixel_area_m2} and {b.pixel_area_m2} m2"
        )
    start, end = _start(a), _end(b)
    if start is not None and end is not None and start > end:
        raise InputError(
            f"{a.path} ({start:%Y-%m-%d}) is later than {b.path} (up to {end:%Y-%m-%d}): give the earlier "
            "run first, the change is from the first map to the second"
        )


def _when(run: RunFolder, key: str) -> dt.datetime | None:
    props = run.item.get("properties", {})
    value = props.get(key) or props.get("datetime")
    try:
        return pystac.utils.str_to_datetime(str(value)).astimezone(dt.UTC) if value else None
    except ValueError:
        return None


def _start(run: RunFolder) -> dt.datetime | None:
    return _when(run, "start_datetime")


def _end(run: RunFolder) -> dt.datetime | None:
    return _when(run, "end_datetime")


def _table_text(classes: ClassTable) -> str:
    return ", ".join(f"{c.value}={c.name}" for c in classes.classes)


def _tint(rgb: tuple[int, int, int], keep: float = 0.35) -> str:
    return "#" + "".join(f"{round(255 - (255 - v) * keep):02x}" for v in rgb)


def change_classes(classes: ClassTable) -> ClassTable:
    """The from-to classes: code ``i * n + j`` for table positions i (from) and j (to)."""
    n = len(classes.classes)
    rows = []
    for i, a in enumerate(classes.classes):
        for j, b in enumerate(classes.classes):
            same = i == j
            rows.append(
                LandCoverClass(
                    value=i * n + j,
                    name=f"{a.name} unchanged" if same else f"{a.name} to {b.name}",
                    color=_tint(b.rgba[:3]) if same else b.color,
                    description=f"{a.name} in both maps" if same else f"{a.name}, then {b.name}",
                )
            )
    return ClassTable(classes=rows)


def _codes(classes: ClassTable) -> npt.NDArray[np.int64]:
    """Class value -> table position (-1 for values that are not classes)."""
    lookup = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(classes.classes):
        lookup[c.value] = i
    return lookup


def change_block(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], lookup: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.uint8]:
    """From-to codes of a block; nodata where either map has no class."""
    ia, ib = lookup[a], lookup[b]
    valid = (ia >= 0) & (ib >= 0)
    return np.where(valid, ia * n + ib, NODATA).astype(np.uint8)


def change_runs(
    run_a: str | Path,
    run_b: str | Path,
    out_dir: str | Path,
    *,
    block_size: int = 512,
    points: str | Path | None = None,
    label_a: str = "label_a",
    label_b: str = "label_b",
    progress: Progress | None = None,
) -> ChangeResult:
    """Compare two runs of one model on one grid; write the change COG, transition matrix, figure and item.

    Args:
        run_a: the earlier run folder.
        run_b: the later run folder (same class table, same grid).
        out_dir: the output folder; files appear only once complete (``item.json`` last).
        block_size: block edge in pixels; memory is bounded by a few blocks.
        points: validation points (any OGR format with a CRS) labelled at both dates: then
            ``change_areas.json`` gives change areas with 95 % intervals.
        label_a: the points' field with the reference class at the first date (class value or name).
        label_b: the same at the second date.
        progress: told the number of blocks, advanced as each is compared.

    Raises:
        InputError: a run or the points are unreadable, the maps differ in class table or grid, or too many
            classes.
    """
    a, b = open_run(run_a), open_run(run_b)
    if a.path.resolve() == b.path.resolve():  # CLI review: a map compared with itself was accepted
        raise InputError(f"both runs are {a.path}: give the earlier map first, then the later one")
    check_comparable(a, b)
    out = Path(out_dir)
    if out.resolve() in (a.path.resolve(), b.path.resolve()):
        raise InputError(f"--out {out} is an input run folder; write the change to another folder")
    n = len(a.classes.classes)
    if n > MAX_CLASSES:
        raise InputError(f"{n} classes: from-to codes fit in one byte for at most {MAX_CLASSES} classes")
    if block_size < 16:
        raise InputError(f"--block-size must be at least 16 pixels, got {block_size}")
    pairs = change_classes(a.classes)
    lookup = _codes(a.classes)
    grid = a.grid
    design = change_design(points, n) if points is not None else None
    sample = (
        read_change_points(
            points, label_a, label_b, a.classes, grid, design.stratum_field if design else None
        )
        if points is not None
        else None
    )
    if design is not None and sample is not None and sample.outside:  # products review: wrong extent, exit 0
        raise InputError(
            f"{sample.outside} points of the sample design {points} lie outside the maps: a design's "
            "estimates are of the extent of the change it was drawn on (its strata's areas); compare the "
            "runs it was designed on, or runs on their grid"
        )
    sampled = np.full(len(sample.rows) if sample else 0, -1, dtype=np.int64)
    progress = progress or NullProgress()
    counts = np.zeros(256, dtype=np.int64)
    cells = area_cells(a.grid.crs.to_string(), a.grid.transform, a.grid.width, a.grid.height)
    area_m2 = np.zeros(256, dtype=np.float64)
    blocks = list(grid_blocks(grid.height, grid.width, block_size))
    with staging_dir(out) as staging, gdal_env():
        tmp = staging / "change.tmp.tif"
        profile = staging_profile(grid.crs, grid.transform, grid.width, grid.height)
        progress.start("comparing blocks", len(blocks))
        with (
            rasterio.open(a.classes_path) as src_a,
            rasterio.open(b.classes_path) as src_b,
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            dst.write_colormap(1, pairs.colormap())
            dst.set_band_description(1, "from-to land cover change")
            dst.update_tags(1, **class_tags(pairs))
            for block in blocks:
                window = Window(block.col, block.row, block.width, block.height)
                codes = change_block(read_band(src_a, window), read_band(src_b, window), lookup, n)
                dst.write(codes, 1, window=window)
                if sample is not None:
                    here = (
                        (sample.rows >= block.row)
                        & (sample.rows < block.row + block.height)
                        & (sample.cols >= block.col)
                        & (sample.cols < block.col + block.width)
                    )
                    sampled[here] = codes[sample.rows[here] - block.row, sample.cols[here] - block.col]
                counts += np.bincount(codes.ravel(), minlength=256)
                if cells is not None:
                    area_m2 += cells.sum_by_value(codes, block.row, block.col)
                progress.advance()
        translate_to_cog(tmp, staging / CHANGE_NAME, CHANGE_COG)
        tmp.unlink()
        write_class_sidecars(staging, pairs, CHANGE_AUX, CHANGE_QML)
        pixels = counts[: n * n].reshape(n, n)
        # each pixel's own area where pixel areas vary across the map (lulc.areas), else the mean one
        area = pixels * a.pixel_area_m2 if cells is None else area_m2[: n * n].reshape(n, n)
        hectares = np.asarray(area, dtype=np.float64) / 10_000.0
        matrix = transition_matrix(a, b, pixels, hectares, int(counts[NODATA]))
        (staging / MATRIX_NAME).write_text(dump_json(matrix), encoding="utf-8")
        (staging / FIGURE_NAME).write_text(transition_svg(a.classes, pixels, hectares), encoding="utf-8")
        files = [CHANGE_NAME, CHANGE_AUX, CHANGE_QML, MATRIX_NAME, FIGURE_NAME]
        areas = None
        if sample is not None:
            mapped = sampled != NODATA
            # without a design the strata are the codes: weighed by their true areas (m2) where pixel
            # areas vary, as the matrix is; a design's strata are its pixel counts
            by_area = cells is not None and design is None
            areas = change_area_estimate(
                sampled[mapped],
                sample.first[mapped] * n + sample.second[mapped],
                area_m2[: n * n] if by_area else design.pixels if design else pixels.ravel(),
                1e-4 if by_area else a.pixel_area_m2 / 10_000.0,
                a.classes,
                strata=sample.strata[mapped] if design and sample.strata is not None else None,
                stratum_names=design.names if design else None,
                code_pixels=pixels.ravel(),
                code_hectares=hectares.ravel(),
            )
            areas["points_outside_map"] = sample.outside
            areas["points_on_nodata"] = int((~mapped).sum())
            (staging / AREAS_NAME).write_text(dump_json(areas), encoding="utf-8")
            files.append(AREAS_NAME)
        item = _change_item(a, b, out, staging, pairs)
        (staging / ITEM_NAME).write_text(dump_json(item), encoding="utf-8")
        move_into_place(staging, out, [*files, ITEM_NAME])
        if areas is None:
            (out / AREAS_NAME).unlink(missing_ok=True)  # a previous run's, which item.json no longer lists
    return ChangeResult(out, pixels, item, matrix, areas)


@dataclass(frozen=True)
class ChangeDesign:
    """The strata of a ``lulc design`` sample of a change product: sizes, names, the points' column."""

    pixels: npt.NDArray[np.int64]
    names: list[str]
    stratum_field: str


def change_design(points: str | Path, n: int) -> ChangeDesign | None:
    """The change strata of a sample made by ``lulc design`` on a change product; None without a design.

    Raises:
        InputError: the sample was designed on a map (not on change), or on another class table.
    """
    design = read_sample_design(points)
    if design is None:
        return None
    if design.get("kind") != "change":
        raise InputError(
            f"{points} was designed on a map's classes, not on change; design the change sample with "
            "`lulc design CHANGE_FOLDER` (the output of `lulc change`)"
        )
    strata = sorted(design["strata"], key=lambda s: int(s["value"]))
    if [int(s["value"]) for s in strata] != list(range(2 * n)):
        raise InputError(
            f"{points} was designed on change strata of another class table ({len(strata)} strata)"
        )
    return ChangeDesign(
        np.array([int(s["pixels"]) for s in strata], dtype=np.int64),
        [str(s["name"]) for s in strata],
        str(design.get("stratum_field", "stratum")),
    )


def transition_matrix(
    a: RunFolder,
    b: RunFolder,
    pixels: npt.NDArray[np.int64],
    hectares: npt.NDArray[np.float64],
    nodata_pixels: int,
) -> dict[str, Any]:
    """The transition matrix as JSON: rows are classes in the first map, columns in the second."""
    names = a.classes.names
    return {
        "from": str(a.item.get("id", a.path.name)),
        "to": str(b.item.get("id", b.path.name)),
        "classes": [{"value": c.value, "name": c.name} for c in a.classes.classes],
        "pixels": pixels.tolist(),
        "hectares": [[round(float(v), 4) for v in row] for row in hectares],
        "pixel_area_m2": round(a.pixel_area_m2, 6),
        "compared_pixels": int(pixels.sum()),
        "changed_pixels": int(pixels.sum() - np.trace(pixels)),
        "nodata_pixels": nodata_pixels,
        "by_class": [
            {
                "name": name,
                "from_hectares": round(float(hectares[i].sum()), 4),
                "to_hectares": round(float(hectares[:, i].sum()), 4),
                "net_hectares": round(float(hectares[:, i].sum() - hectares[i].sum()), 4),
            }
            for i, name in enumerate(names)
        ],
    }


def transition_svg(
    classes: ClassTable, pixels: npt.NDArray[np.int64], hectares: npt.NDArray[np.float64]
) -> str:
    """The transition matrix (hectares) as an SVG figure: cells shaded by their share of the compared area."""
    n = len(classes.classes)
    cell, left, top = 110, 170, 90
    width, height = left + n * cell + 20, top + n * cell + 40
    total = max(int(pixels.sum()), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">Transitions (hectares): rows from, '
        "columns to</text>",
    ]
    for i, c in enumerate(classes.classes):
        x = left + i * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 10}" text-anchor="middle">{escape(c.name)}</text>')
        y = top + i * cell + cell / 2
        parts.append(f'<text x="{left - 8}" y="{y}" text-anchor="end">{escape(c.name)}</text>')
    for i in range(n):
        for j in range(n):
            share = int(pixels[i, j]) / total
            shade = round(255 - 200 * math.sqrt(share))
            fill = f"#{shade:02x}{shade:02x}ff" if i != j else f"#{shade:02x}{shade:02x}{shade:02x}"
            x, y = left + j * cell, top + i * cell
            ink = "#ffffff" if shade < 120 else "#000000"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#888"/>'
            )
            parts.append(
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" fill="{ink}">'
                f"{float(hectares[i, j]):,.2f}</text>"
            )
    parts.append(
        f'<text x="{left}" y="{height - 12}">Compared: {float(hectares.sum()):,.2f} ha; changed: '
        f"{float(hectares.sum() - np.trace(hectares)):,.2f} ha</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _change_item(a: RunFolder, b: RunFolder, out: Path, staging: Path, pairs: ClassTable) -> dict[str, Any]:
    id_a, id_b = str(a.item.get("id", a.path.name)), str(b.item.get("id", b.path.name))
    classes = stac_classes(pairs)
    props_a, props_b = a.item.get("properties", {}), b.item.get("properties", {})
    start = props_a.get("start_datetime") or props_a.get("datetime")
    end = props_b.get("end_datetime") or props_b.get("datetime")
    times: dict[str, Any] = (
        {"datetime": None, "start_datetime": start, "end_datetime": end} if start and end else {}
    )
    windows = [props_a.get("lulc:datetime_window"), props_b.get("lulc:datetime_window")]
    if all(windows):  # both maps' windows, earlier first (the first run's alone was kept: outputs review)
        times["lulc:datetime_windows"] = windows
    return product_item(
        product="change",
        item_id=f"change-{id_a}-{id_b}",
        source=a,
        title=f"Land cover change from {id_a} to {id_b}",
        lineage=(
            f"Items {id_a} and {id_b} (one model, one grid) compared pixel by pixel by lulc-stac: "
            "code = from position x number of classes + to position"
        ),
        properties={"classification:classes": classes, **times},
        assets={
            "change": {
                "href": f"./{CHANGE_NAME}",
                "type": COG_TYPE,
                "title": "From-to land cover change",
                "roles": ["data"],
                "classification:classes": classes,
                "raster:bands": [
                    {
                        "data_type": "uint8",
                        "nodata": NODATA,
                        "spatial_resolution": abs(a.grid.transform.a),
                        "sampling": "area",
                    }
                ],
                **file_fields(staging / CHANGE_NAME),
            },
            "change_aux": pam_asset(CHANGE_AUX, CHANGE_NAME),
            "change_style": {
                "href": f"./{CHANGE_QML}",
                "type": QML_TYPE,
                "title": "QGIS layer style of change.tif: the from-to classes and colours as its legend",
                "roles": ["metadata", "style"],
                **file_fields(staging / CHANGE_QML),
            },
            "transitions": {
                "href": f"./{MATRIX_NAME}",
                "type": "application/json",
                "title": "Transition matrix in pixels and hectares (rows from, columns to)",
                "roles": ["metadata"],
                **file_fields(staging / MATRIX_NAME),
            },
            **(
                {
                    "change_areas": {
                        "href": f"./{AREAS_NAME}",
                        "type": "application/json",
                        "title": "Change areas with 95 % confidence intervals (Olofsson et al. 2014)",
                        "roles": ["metadata"],
                        **file_fields(staging / AREAS_NAME),
                    }
                }
                if (staging / AREAS_NAME).is_file()
                else {}
            ),
            "transitions_figure": {
                "href": f"./{FIGURE_NAME}",
                "type": "image/svg+xml",
                "title": "Transition matrix figure (hectares)",
                "roles": ["overview"],
                **file_fields(staging / FIGURE_NAME),
            },
        },
        links=[
            derived_link(a, out, f"first map {id_a}"),
            derived_link(b, out, f"second map {id_b}"),
        ],
        extensions=[CLASSIFICATION, RASTER],
        # one window is a string, both maps' are a list: a key each (a reader of one key gets one type);
        # the first map's unmapped ground is not the change map's (either map's gap is a gap in it): without
        # the key a reader counts every nodata pixel (tiler.areas.run_mapped_area)
        dropped={"lulc:datetime_window", UNMAPPED},
    )
