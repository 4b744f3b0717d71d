"""Classification runs on disk: folders holding ``classes.tif`` and ``item.json`` (the service's output)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from lulc.errors import LulcError
from tiler.backdrop import Backdrop, backdrop_of
from tiler.colormaps import ITEM_NAME, classes_from_item, is_remote, read_json
from tiler.errors import NotAllowedError

logger = logging.getLogger(__name__)

MAP_NAME = "classes.tif"
CONFIDENCE_NAME = "confidence.tif"


class Run(BaseModel):
    """One classification run the web map can show."""

    id: str = Field(description="Folder of the run relative to the runs folder.")
    title: str
    classes: str = Field(description="Path of the class map (the `url` for /cog and /legend).")
    confidence: str | None = Field(description="Path of the confidence COG, if the run has one.")
    item: str = Field(description="Path of the run's STAC item.")
    bbox: list[float] | None
    datetime: str | None
    model: str | None
    backdrop: Backdrop | None = Field(description="Least cloudy input Sentinel-2 item with its composites.")
    aoa: str | None = Field(default=None, description="Path of the run's aoa.tif (DI x 100), if it has one.")
    aoa_threshold: float | None = Field(
        default=None, description="The model's area-of-applicability threshold (DI units), with `aoa`."
    )


def _model_name(item: dict[str, Any]) -> str | None:
    props = item.get("properties", {})
    if not isinstance(props, dict):
        return None
    for key in ("lulc:model", "mlm:name", "lulc:model_name"):
        value = props.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return str(value["name"])
    return None


def _datetime(item: dict[str, Any]) -> str | None:
    props = item.get("properties", {})
    if not isinstance(props, dict):
        return None
    value = props.get("datetime") or props.get("start_datetime")
    if props.get("start_datetime") and props.get("end_datetime"):
        value = f"{props['start_datetime']}/{props['end_datetime']}"
    return str(value) if value else None


def _backdrop(item_path: Path, item: dict[str, Any], allowed: Callable[[str], str]) -> Backdrop | None:
    """The least cloudy ``derived_from`` item that is a Sentinel-2 item (None when there is none)."""
    candidates: list[Backdrop] = []
    for link in item.get("links", []):
        if not isinstance(link, dict) or link.get("rel") != "derived_from" or not link.get("href"):
            continue
        href = str(link["href"])
        if not (href.endswith(".json") or "json" in str(link.get("type", ""))):
            continue  # the model (.onnx) and other non-item inputs
        relative = not is_remote(href) and not href.startswith(("/", "file://"))
        try:
            # the checked, normalised location is what gets read
            location = allowed(str(item_path.parent / href) if relative else href)
        except NotAllowedError:
            logger.info("backdrop item %s is outside the allow-list", href)
            continue
        source = read_json(location)
        if source is None:
            continue
        try:
            candidates.append(backdrop_of(location, source))
        except (LulcError, KeyError, ValueError, TypeError) as exc:
            logger.debug("%s is not a Sentinel-2 item: %s", location, exc)
    if not candidates:
        return None
    return min(candidates, key=lambda b: (b.cloud_cover if b.cloud_cover is not None else 100.0, b.datetime))


def find_runs(runs_dir: Path, allowed: Callable[[str], str]) -> list[Run]:
    """Every run under ``runs_dir`` (recursively), sorted by folder."""
    runs: list[Run] = []
    if not runs_dir.is_dir():
        return runs
    root = runs_dir.resolve()
    for map_path in sorted(root.rglob(MAP_NAME)):
        folder = map_path.parent
        item_path = folder / ITEM_NAME
        if not item_path.is_file():
            continue
        item = read_json(str(item_path))
        if item is None:
            logger.warning("skipping run %s: item.json is not a JSON object", folder)
            continue
        try:
            if classes_from_item(item, MAP_NAME) is None:
                logger.info("skipping run %s: its item has no classification:classes", folder)
                continue
        except LulcError as exc:
            logger.warning("skipping run %s: %s", folder, exc)
            continue
        rel = folder.relative_to(root).as_posix()
        confidence = folder / CONFIDENCE_NAME
        aoa = folder / "aoa.tif"
        threshold = item.get("properties", {}).get("lulc:aoa_threshold")
        has_aoa = aoa.is_file() and isinstance(threshold, int | float)
        bbox = item.get("bbox")
        runs.append(
            Run(
                id=rel,
                title=str(item.get("id") or rel),
                classes=str(map_path),
                confidence=str(confidence) if confidence.is_file() else None,
                item=str(item_path),
                bbox=[float(v) for v in bbox] if isinstance(bbox, list) and len(bbox) == 4 else None,
                datetime=_datetime(item),
                model=_model_name(item),
                backdrop=_backdrop(item_path, item, allowed),
                aoa=str(aoa) if has_aoa else None,
                aoa_threshold=float(threshold) if has_aoa else None,
            )
        )
    return runs
