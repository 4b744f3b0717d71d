"""Labelled points from any OGR file: the label field, class-table matching, reprojection to the imagery."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

from lulc.classes import ClassTable
from training.errors import PointsError, TrainingError


@dataclass(frozen=True)
class LabelledPoints:
    """Point coordinates in their own CRS with class values matched to a class table."""

    source: str
    crs: CRS
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    classes: ClassTable
    fields: list[str]

    def __len__(self) -> int:
        return int(self.labels.size)

    def xy_in(self, crs: CRS) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The coordinates reprojected to ``crs``."""
        if CRS.from_user_input(crs) == self.crs:
            return self.x, self.y
        transformer = Transformer.from_crs(self.crs, crs, always_xy=True)
        x, y = transformer.transform(self.x, self.y)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def read_vector(path: Path, what: str, error: type[TrainingError]) -> Any:
    """A vector file (any OGR format) as a GeoDataFrame; ``error`` naming ``what`` and the file otherwise."""
    import geopandas as gpd  # heavy; only training needs it

    if not path.exists():
        raise error(f"{what} {path} does not exist")
    try:
        return gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        raise error(f"cannot read {what} {path}: {exc}") from exc


def read_points(
    path: str | Path,
    label_field: str,
    classes: ClassTable | None = None,
    points_crs: str | None = None,
) -> LabelledPoints:
    """Read labelled points (any OGR format, any CRS) and match labels to ``classes``.

    Numeric labels match class ``value``s, text labels class ``name``s. Without a class table the
    table is made from the labels (``ClassTable.from_labels``).
    """
    path = Path(path)
    frame = read_vector(path, "points file", PointsError)
    fields = [c for c in frame.columns if c != frame.geometry.name]
    if label_field not in frame.columns:
        raise PointsError(
            f"points file {path} has no field {label_field!r}; its fields are: {', '.join(fields) or 'none'}"
        )
    if len(frame) == 0:
        raise PointsError(f"points file {path} holds no features")
    crs = _points_crs(frame.crs, points_crs, path)
    geoms = frame.geometry
    if geoms.isna().any() or geoms.is_empty.any():
        bad = [int(i) for i in np.flatnonzero(np.asarray(geoms.isna() | geoms.is_empty))][:10]
        raise PointsError(f"points file {path} has features without geometry (rows {bad})")
    kinds = sorted(set(geoms.geom_type))
    if kinds != ["Point"]:
        raise PointsError(f"points file {path} must hold Point geometries only, found {kinds}")
    raw = frame[label_field]
    if raw.isna().any():
        rows = [int(i) for i in np.flatnonzero(np.asarray(raw.isna()))][:10]
        raise PointsError(f"points file {path} has empty {label_field!r} labels (rows {rows})")
    table = classes if classes is not None else ClassTable.from_labels(raw.tolist())
    labels = match_labels(raw.tolist(), table, f"{path} field {label_field!r}")
    return LabelledPoints(
        source=str(path),
        crs=crs,
        x=np.asarray(geoms.x, dtype=np.float64),
        y=np.asarray(geoms.y, dtype=np.float64),
        labels=labels,
        classes=table,
        fields=fields,
    )


def _points_crs(declared: object, override: str | None, path: Path) -> CRS:
    if override is not None:
        try:
            return CRS.from_user_input(override)
        except Exception as exc:
            raise PointsError(f"points CRS {override!r} is not a CRS: {exc}") from exc
    if declared is None:
        raise PointsError(
            f"points file {path} declares no CRS, so its coordinates cannot be placed on the imagery; "
            "give it one (e.g. a .prj file or `ogr2ogr -a_srs EPSG:4326`) or pass --points-crs"
        )
    return CRS.from_user_input(declared)


def _as_number(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def match_labels(raw: list[object], classes: ClassTable, origin: str) -> npt.NDArray[np.int64]:
    """Class values for raw labels: integral numbers match ``value``, text matches ``name``."""
    numbers = [_as_number(v) for v in raw]
    if all(n is not None and float(n).is_integer() for n in numbers):
        values = [int(n) for n in numbers if n is not None]
        unknown = sorted(set(values) - set(classes.values))
        if unknown:
            raise PointsError(
                f"labels {unknown} in {origin} are not class values of the class table "
                f"{dict(zip(classes.values, classes.names, strict=True))}"
            )
        return np.asarray(values, dtype=np.int64)
    by_name = {c.name: c.value for c in classes.classes}
    by_folded = {c.name.casefold(): c.value for c in classes.classes}
    out = []
    unknown_names: set[str] = set()
    for v in raw:
        text = str(v).strip()
        value = by_name.get(text, by_folded.get(text.casefold()))
        if value is None:
            unknown_names.add(text)
        else:
            out.append(value)
    if unknown_names:
        raise PointsError(
            f"labels {sorted(unknown_names)} in {origin} are not class names of the class table "
            f"{classes.names}"
        )
    return np.asarray(out, dtype=np.int64)
