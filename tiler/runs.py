"""Classification runs on disk: folders holding ``classes.tif`` and ``item.json`` (the service's output).

A run is listed with the layers the web map can show over it: its per-pixel classes, the products made from
it (a cleaned map, ``lulc:product: clean``; a change map, ``lulc:product: change``, listed under both runs it
compares; found through their items' ``derived_from`` links) and its class probabilities. A product whose
source run is not under the runs folder is listed as a run of its own. Runs a series collection
(``lulc classify --every``) links carry the series, so the web map can step through its periods.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from lulc.errors import LulcError
from lulc.gdal_env import gdal_env
from lulc.grid import OutputGrid
from tiler.backdrop import Backdrop, backdrop_of, image_backdrop
from tiler.colormaps import ITEM_NAME, MAX_JSON_BYTES, classes_from_item, is_remote, read_json
from tiler.errors import NotAllowedError

logger = logging.getLogger(__name__)

MAP_NAME = "classes.tif"
CONFIDENCE_NAME = "confidence.tif"
CHANGE_NAME = "change.tif"
PROBABILITIES_NAME = "probabilities.tif"
COLLECTION_NAME = "collection.json"

LayerKind = Literal["classes", "clean", "smooth", "change", "probability"]
LAYER_ORDER: tuple[LayerKind, ...] = ("classes", "clean", "smooth", "change", "probability")
DERIVED: dict[str, LayerKind] = {"clean": "clean", "smooth": "smooth", "change": "change"}
"""The products shown as layers of the map they were made from (``lulc:product`` -> layer kind)."""
"""The order of a run's layers in the web map's selector."""


class MapLayer(BaseModel):
    """One map the web map can show over a run: the classes, a product of the run, or a probability band."""

    id: str
    kind: LayerKind
    title: str
    url: str = Field(description="Path of the COG (the `url` for /cog and /legend).")
    item: str | None = Field(default=None, description="Path of the layer's STAC item.")
    band: int | None = Field(default=None, description="Band of the COG (probabilities: one per class).")


class SeriesPeriod(BaseModel):
    """One period of a series and the run that maps it."""

    period: str
    run: str = Field(description="The `id` of the period's run.")


class Series(BaseModel):
    """A series collection (``lulc classify --every``) a run belongs to."""

    url: str = Field(description="Path of the collection (the `url` for POST /statistics/series).")
    id: str
    title: str
    every: str
    periods: list[SeriesPeriod]


class Run(BaseModel):
    """One classification run the web map can show."""

    id: str = Field(description="Folder of the run relative to the runs folder.")
    title: str = Field(description="What made the map (its item's title: the model) and when.")
    classes: str = Field(description="Path of the class map (the `url` for /cog and /legend).")
    confidence: str | None = Field(description="Path of the confidence COG, if the run has one.")
    item: str = Field(description="Path of the run's STAC item.")
    bbox: list[float] | None
    datetime: str | None
    date: str | None = Field(default=None, description="The acquisition date(s) as a short label.")
    model: str | None
    backdrop: Backdrop | None = Field(description="The least cloudy input imagery, as true/false colour.")
    aoa: str | None = Field(default=None, description="Path of the run's aoa.tif (DI x 100), if it has one.")
    aoa_threshold: float | None = Field(
        default=None, description="The model's area-of-applicability threshold (DI units), with `aoa`."
    )
    layers: list[MapLayer] = Field(
        default_factory=list, description="Maps to show: classes first, then products and probabilities."
    )
    series: Series | None = Field(default=None, description="The series the run is a period of, if any.")


def _properties(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("properties", {})
    return props if isinstance(props, dict) else {}


def _model_name(item: dict[str, Any]) -> str | None:
    props = _properties(item)
    for key in ("lulc:model", "mlm:name", "lulc:model_name"):
        value = props.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return str(value["name"])
    return None


def _datetime(item: dict[str, Any]) -> str | None:
    props = _properties(item)
    value = props.get("datetime") or props.get("start_datetime")
    if props.get("start_datetime") and props.get("end_datetime"):
        value = f"{props['start_datetime']}/{props['end_datetime']}"
    return str(value) if value else None


def date_label(item: dict[str, Any]) -> str | None:
    """``2024-08-10``, or ``2021-07-18 to 2021-09-06`` for inputs acquired over a range of days."""
    value = _datetime(item)
    if value is None:
        return None
    days = sorted({part[:10] for part in value.split("/")})
    return " to ".join(days)


def _title(item: dict[str, Any], fallback: str) -> str:
    """The item's title (``Land cover from <model> <version>``) and its date, else the id."""
    title = _properties(item).get("title")
    base = str(title) if isinstance(title, str) and title else str(item.get("id") or fallback)
    date = date_label(item)
    return f"{base}, {date}" if date else base


def _bbox(item: dict[str, Any]) -> list[float] | None:
    """West, south, east, north: of a 2D bbox, or of a 3D one without its heights; None if malformed."""
    bbox = item.get("bbox")
    if not isinstance(bbox, list) or len(bbox) not in (4, 6):
        return None
    corners = bbox if len(bbox) == 4 else [bbox[0], bbox[1], bbox[3], bbox[4]]
    try:
        values = [float(v) for v in corners]
    except (TypeError, ValueError):
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _raster_bbox(path: Path) -> list[float] | None:
    """The map's own lon/lat bounds, for an item without a usable bbox (else the web map shows the world)."""
    import rasterio

    try:
        with gdal_env(), rasterio.open(path) as src:
            if src.crs is None:
                return None
            grid = OutputGrid(src.crs.to_string(), src.transform, src.width, src.height)
        return list(grid.bounds_wgs84())
    except (rasterio.errors.RasterioError, ValueError):
        return None


def _links(item: dict[str, Any], rel: str, where: Path) -> Iterator[dict[str, Any]]:
    """The item's (or collection's) links of relation ``rel`` with an ``href`` string.

    Links that are not a list are ignored with a warning naming ``where`` (the file): the run is listed
    without what they would have linked.
    """
    links = item.get("links", [])
    if not isinstance(links, list):
        logger.warning("ignoring the links of %s: not a list but %s", where, type(links).__name__)
        return
    for link in links:
        if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str):
            yield link


def _local_target(folder: Path, href: str) -> Path | None:
    """The local file a link points at (relative to ``folder``), resolved; None for URLs."""
    if is_remote(href) and not href.startswith("file://"):
        return None
    path = Path(href.removeprefix("file://"))
    return (path if path.is_absolute() else folder / path).resolve()


def _backdrop(
    item_path: Path, item: dict[str, Any], allowed: Callable[[str], str], max_bytes: int
) -> Backdrop | None:
    """The least cloudy input the item is ``derived_from``: a Sentinel-2 item or a local image.

    None when there is none (or none on the allow-list).
    """
    candidates: list[Backdrop] = []
    for link in _links(item, "derived_from", item_path):
        href = str(link["href"])
        image = "lulc:bands" in link
        if not image and not (href.endswith(".json") or "json" in str(link.get("type", ""))):
            continue  # the model (.onnx) and other non-item inputs
        relative = not is_remote(href) and not href.startswith(("/", "file://"))
        try:
            # the checked, normalised location is what gets read
            location = allowed(str(item_path.parent / href) if relative else href)
        except NotAllowedError:
            logger.info("backdrop input %s is outside the allow-list", href)
            continue
        try:
            if image:
                candidates.append(image_backdrop(location, link, _datetime(item) or "", _bbox(item)))
                continue
            source = read_json(location, max_bytes=max_bytes)
            if source is not None:
                candidates.append(backdrop_of(location, source))
        except (LulcError, KeyError, ValueError, TypeError) as exc:
            logger.debug("%s is not a backdrop input: %s", location, exc)
    if not candidates:
        return None
    return min(candidates, key=lambda b: (b.cloud_cover if b.cloud_cover is not None else 100.0, b.datetime))


@dataclass(frozen=True)
class _Found:
    """An item under the runs folder: a run, or a product of one."""

    folder: Path
    item: dict[str, Any]
    product: str | None


def _product(item: dict[str, Any]) -> str | None:
    """``clean`` or ``change`` for those products (also from items written before ``lulc:product``)."""
    props = _properties(item)
    kind = props.get("lulc:product")
    if isinstance(kind, str):
        return kind
    if "lulc:mmu_pixels" in props:
        return "clean"
    assets = item.get("assets")
    return "change" if isinstance(assets, dict) and "change" in assets else None


def _scan(root: Path, max_bytes: int) -> Iterator[_Found]:
    """Every STAC item under ``root`` (hidden folders, such as runs in progress, skipped)."""
    for item_path in sorted(root.rglob(ITEM_NAME)):
        if any(part.startswith(".") for part in item_path.relative_to(root).parts):
            continue
        item = read_json(str(item_path), max_bytes=max_bytes)
        if item is None:
            logger.warning("skipping %s: not a JSON object", item_path)
            continue
        yield _Found(item_path.parent, item, _product(item))


def _run(root: Path, found: _Found, raster: str, allowed: Callable[[str], str], max_bytes: int) -> Run | None:
    folder, item = found.folder, found.item
    map_path = folder / raster
    if not map_path.is_file():
        return None
    try:
        if classes_from_item(item, raster) is None:
            logger.info("skipping run %s: its item has no classification:classes", folder)
            return None
    except LulcError as exc:
        logger.warning("skipping run %s: %s", folder, exc)
        return None
    rel = folder.relative_to(root).as_posix()
    confidence = folder / CONFIDENCE_NAME
    aoa = folder / "aoa.tif"
    value = _properties(item).get("lulc:aoa_threshold")
    threshold = float(value) if aoa.is_file() and isinstance(value, int | float) else None
    item_path = str(folder / ITEM_NAME)
    kind: LayerKind = "change" if raster == CHANGE_NAME else DERIVED.get(found.product or "", "classes")
    layers = [MapLayer(id=kind, kind=kind, title=_layer_title(kind, item), url=str(map_path), item=item_path)]
    layers += _probability_layers(folder, item)
    return Run(
        id=rel,
        title=_title(item, rel),
        classes=str(map_path),
        confidence=str(confidence) if confidence.is_file() else None,
        item=item_path,
        bbox=_bbox(item) or _raster_bbox(map_path),
        datetime=_datetime(item),
        date=date_label(item),
        model=_model_name(item),
        backdrop=_backdrop(folder / ITEM_NAME, item, allowed, max_bytes),
        aoa=str(aoa) if threshold is not None else None,
        aoa_threshold=threshold,
        layers=layers,
    )


def _layer_title(kind: LayerKind, item: dict[str, Any], sources: list[Run] | None = None) -> str:
    props = _properties(item)
    if kind == "clean":
        mmu = props.get("lulc:mmu_ha")
        return f"Cleaned: minimum mapping unit {mmu:g} ha" if isinstance(mmu, int | float) else "Cleaned"
    if kind == "smooth":
        smoothing = props.get("lulc:smoothing")
        window = smoothing.get("window") if isinstance(smoothing, dict) else None
        return f"Smoothed: Bayesian, {window} x {window} window" if isinstance(window, int) else "Smoothed"
    if kind == "change":
        dates = [run.date for run in sources or [] if run.date]
        return f"Change: {dates[0]} → {dates[-1]}" if len(dates) == 2 else "Change"
    return "Classes (per pixel)"


def _probability_layers(folder: Path, item: dict[str, Any]) -> list[MapLayer]:
    """One layer per band of the run's ``probabilities.tif`` (band names from its item)."""
    path = folder / PROBABILITIES_NAME
    assets = item.get("assets")
    asset = assets.get("probabilities") if isinstance(assets, dict) else None
    if not path.is_file() or not isinstance(asset, dict):
        return []
    bands = asset.get("raster:bands") or asset.get("bands") or []
    if not isinstance(bands, list):
        return []
    return [
        MapLayer(
            id=f"probability:{index}",
            kind="probability",
            title=f"Probability: {band.get('name', f'band {index}')}",
            url=str(path),
            item=str(folder / ITEM_NAME),
            band=index,
        )
        for index, band in enumerate(bands, start=1)
        if isinstance(band, dict)
    ]


def _series(root: Path, runs: dict[Path, Run], max_bytes: int) -> None:
    """Attach each series collection under ``root`` to the runs its item links point at."""
    for path in sorted(root.rglob(COLLECTION_NAME)):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        collection = read_json(str(path), max_bytes=max_bytes)
        if collection is None or collection.get("type") != "Collection":
            continue
        periods: list[tuple[str, Run]] = []
        for link in _links(collection, "item", path):
            target = _local_target(path.parent, str(link["href"]))
            run = runs.get(target) if target is not None else None
            if run is not None:
                periods.append((str(link.get("lulc:period") or link.get("title") or run.id), run))
        if not periods:
            continue
        summaries = collection.get("summaries")
        steps = summaries.get("lulc:every") if isinstance(summaries, dict) else None
        every = steps if isinstance(steps, list) and steps else [""]
        series = Series(
            url=str(path),
            id=str(collection.get("id", path.parent.name)),
            title=str(collection.get("title", path.parent.name)),
            every=str(every[0]),
            periods=[SeriesPeriod(period=label, run=run.id) for label, run in periods],
        )
        for _, run in periods:
            run.series = series


def find_runs(runs_dir: Path, allowed: Callable[[str], str], max_bytes: int = MAX_JSON_BYTES) -> list[Run]:
    """Every run under ``runs_dir`` (recursively) with its layers and series, sorted by folder."""
    if not runs_dir.is_dir():
        return []
    root = runs_dir.resolve()
    found = list(_scan(root, max_bytes))
    runs: dict[Path, Run] = {}
    for entry in found:
        if entry.product is None and (run := _run(root, entry, MAP_NAME, allowed, max_bytes)) is not None:
            runs[(entry.folder / ITEM_NAME).resolve()] = run
    own: list[Run] = []
    for entry in found:
        if entry.product not in DERIVED:
            continue
        sources = [
            runs[target]
            for link in _links(entry.item, "derived_from", entry.folder / ITEM_NAME)
            if (target := _local_target(entry.folder, str(link["href"]))) in runs
        ]
        raster = CHANGE_NAME if entry.product == "change" else MAP_NAME
        if not sources:  # its source run is elsewhere: a run of its own
            if (run := _run(root, entry, raster, allowed, max_bytes)) is not None:
                own.append(run)
            continue
        if not (entry.folder / raster).is_file():
            continue
        kind = DERIVED[entry.product]
        layer = MapLayer(
            id=f"{kind}:{entry.folder.relative_to(root).as_posix()}",
            kind=kind,
            title=_layer_title(kind, entry.item, sources),
            url=str(entry.folder / raster),
            item=str(entry.folder / ITEM_NAME),
        )
        for run in sources:
            run.layers.append(layer)
    for run in runs.values():  # classes, cleaned maps, change maps, probabilities
        run.layers.sort(key=lambda layer: LAYER_ORDER.index(layer.kind))
    _series(root, runs, max_bytes)
    return sorted([*runs.values(), *own], key=lambda run: run.id)
