"""Labelled samples from any OGR file or a CSV: points and polygons, class-table matching, reprojection.

Points (and the parts of MultiPoints) are samples as they are. Polygons (and MultiPolygons) become the
pixel centres inside them once the imagery grid is known (``LabelledPoints.with_polygon_pixels``), as sits
samples polygons: every pixel, or a seeded random subset per polygon. Every sample remembers the feature
it came from (``groups``), so accuracy can be estimated with no polygon on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

from lulc.classes import ClassTable
from lulc.errors import InputError
from lulc.urls import missing_file
from lulc.vector_layers import geometry_layer
from training.errors import PointsError, TrainingError

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from lulc.grid import OutputGrid

POINT_KINDS = {"Point", "MultiPoint"}
POLYGON_KINDS = {"Polygon", "MultiPolygon"}
COORDINATE_COLUMNS = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"), ("easting", "northing"))
"""Column pairs read as coordinates from a CSV file (case-insensitive), in this order of preference."""
LONLAT_COLUMNS = {("lon", "lat"), ("longitude", "latitude")}


@dataclass(frozen=True)
class TrainingPolygon:
    """A labelled polygon feature, in the samples' CRS, waiting for the imagery grid."""

    feature: int
    label: int
    geometry: BaseGeometry


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
    groups: npt.NDArray[np.int64] | None = None
    """The feature (row) each sample comes from; None when every sample is a feature of its own."""
    polygons: tuple[TrainingPolygon, ...] = ()
    """Polygon features not yet turned into pixel samples (see ``with_polygon_pixels``)."""
    feature_labels: npt.NDArray[np.int64] | None = None
    """The label of every feature of the file, by row; None when every sample is a feature of its own."""
    pixels: int = 0
    """How many of the samples (the last ones) are pixels of polygons."""

    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def features(self) -> int:
        """How many features the file holds (points, MultiPoints and polygons; a polygon's pixels are one)."""
        return len(self) if self.feature_labels is None else int(self.feature_labels.size)

    @property
    def file_labels(self) -> npt.NDArray[np.int64]:
        """The label of every feature of the file, by row (polygons outside the imagery too)."""
        return self.labels if self.feature_labels is None else self.feature_labels

    def xy_in(self, crs: CRS) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The coordinates reprojected to ``crs``."""
        if CRS.from_user_input(crs) == self.crs:
            return self.x, self.y
        transformer = Transformer.from_crs(self.crs, crs, always_xy=True)
        x, y = transformer.transform(self.x, self.y)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def with_polygon_pixels(
        self, grid: OutputGrid, max_pixels: int | None, seed: int
    ) -> tuple[LabelledPoints, list[str]]:
        """The samples with every polygon replaced by the grid's pixel centres inside it, and notes.

        ``polygon_pixels`` followed by ``draw_pixels`` with every pixel taken as valid: where the imagery is
        known, ``training.sampling.sample_polygons`` draws from the pixels it finds valid instead.
        Coordinates come back in the grid's CRS.
        """
        if not self.polygons:
            return self, []
        every, notes = self.polygon_pixels(grid)
        keep, capped = self.draw_pixels(every, np.ones(len(every), dtype=bool), max_pixels, seed)
        return every.take(keep), [*notes, *capped_note(capped, max_pixels)]

    def polygon_pixels(
        self, grid: OutputGrid, extent: str = "the imagery"
    ) -> tuple[LabelledPoints, list[str]]:
        """The samples with every polygon replaced by all the grid's pixel centres inside it, and notes.

        A polygon gives the centres of the grid pixels inside it (the rule the classifier's AOI mask uses),
        in row-major order, after the samples of points; a polygon holding no pixel centre (smaller than a
        pixel, or thin) gives the pixel under a point inside it, as sits samples points in polygons, and a
        note says so; one outside the grid gives none, and a note names the grid's ``extent``. Coordinates
        come back in the grid's CRS.
        """
        if not self.polygons:
            return self, []
        from lulc.grid import reproject_geometry

        x, y = self.xy_in(grid.rasterio_crs)
        groups = self.groups if self.groups is not None else np.arange(len(self), dtype=np.int64)
        parts_x, parts_y, parts_label, parts_group = [x], [y], [self.labels], [groups]
        notes: list[str] = []
        for polygon in self.polygons:
            shape = reproject_geometry(polygon.geometry, self.crs.to_wkt(), grid.crs)
            px, py = _pixel_centres_inside(shape, grid)
            if px.size == 0:
                name = self.classes.by_value(polygon.label).name
                px, py = _pixel_under(shape.representative_point(), grid)
                if px.size == 0:
                    notes.append(f"polygon {polygon.feature} ({name}) lies outside {extent}")
                    continue
                notes.append(
                    f"polygon {polygon.feature} ({name}) holds no pixel centre (smaller than a pixel, or "
                    "thin): the pixel under a point inside it samples it"
                )
            parts_x.append(px)
            parts_y.append(py)
            parts_label.append(np.full(px.size, polygon.label, dtype=np.int64))
            parts_group.append(np.full(px.size, polygon.feature, dtype=np.int64))
        expanded = replace(
            self,
            crs=CRS.from_user_input(grid.crs),
            x=np.concatenate(parts_x),
            y=np.concatenate(parts_y),
            labels=np.concatenate(parts_label),
            groups=np.concatenate(parts_group),
            polygons=(),
            pixels=sum(part.size for part in parts_x[1:]),
        )
        return expanded, notes

    def draw_pixels(
        self, every: LabelledPoints, valid: npt.NDArray[np.bool_], max_pixels: int | None, seed: int
    ) -> tuple[npt.NDArray[np.int64], int]:
        """Which samples of ``every`` (this file's ``polygon_pixels``) to keep, and how many polygons capped.

        Every point is kept, and every pixel of a polygon of at most ``max_pixels`` pixels (None or 0: of
        any size). A larger polygon keeps ``max_pixels`` of them, drawn first from its ``valid`` pixels:
        a random subset of them seeded by ``seed`` and the polygon itself (so that adding, removing or
        reordering other polygons leaves its subset as it was; where every pixel is valid, the subset
        drawn from all of them before validity counted), kept in row-major order; with fewer valid
        pixels than that, all of them and a seeded subset of the others, which sampling drops (and lists
        with why), so a polygon's samples are never fewer than the cap while it has the valid pixels.
        """
        n_points = len(self)
        keep = [np.arange(n_points, dtype=np.int64)]
        tail = np.asarray(every.groups)[n_points:] if every.groups is not None else np.empty(0, np.int64)
        features, starts, counts = np.unique(tail, return_index=True, return_counts=True)
        span = {int(f): (n_points + int(s), int(c)) for f, s, c in zip(features, starts, counts, strict=True)}
        capped = 0
        for polygon in self.polygons:
            if polygon.feature not in span:  # outside the imagery
                continue
            start, count = span[polygon.feature]
            if not max_pixels or count <= max_pixels:  # None or 0: every pixel
                keep.append(np.arange(start, start + count, dtype=np.int64))
                continue
            rng = np.random.default_rng(_polygon_entropy(seed, polygon))
            keep.append(start + _draw(valid[start : start + count], max_pixels, rng))
            capped += 1
        return np.concatenate(keep), capped

    def lone_polygon(self, grid: OutputGrid) -> BaseGeometry | None:
        """This part's one polygon in the grid's CRS, if it holds no point and one polygon, else None."""
        if len(self) or len(self.polygons) != 1:
            return None
        from lulc.grid import reproject_geometry

        return reproject_geometry(self.polygons[0].geometry, self.crs.to_wkt(), grid.crs)

    def lone_polygon_strips(
        self, shape: BaseGeometry, grid: OutputGrid, strip_pixels: int
    ) -> Iterator[LabelledPoints]:
        """The pixel centres of ``lone_polygon``'s ``shape``, strip by strip: ``polygon_pixels``' in parts."""
        (polygon,) = self.polygons
        crs = CRS.from_user_input(grid.crs)
        for px, py in centre_strips(shape, grid, strip_pixels):
            yield replace(
                self,
                crs=crs,
                x=px,
                y=py,
                labels=np.full(px.size, polygon.label, dtype=np.int64),
                groups=np.full(px.size, polygon.feature, dtype=np.int64),
                polygons=(),
                pixels=px.size,
            )

    def draw_lone_polygon(
        self, valid: npt.NDArray[np.bool_], max_pixels: int, seed: int
    ) -> npt.NDArray[np.int64]:
        """``draw_pixels`` for ``lone_polygon`` of more than ``max_pixels`` centres: the same subset."""
        (polygon,) = self.polygons
        return _draw(valid, max_pixels, np.random.default_rng(_polygon_entropy(seed, polygon)))

    def polygon_batches(self, grid: OutputGrid, batch_pixels: int) -> list[LabelledPoints]:
        """These samples in parts of whole polygons, each of at most about ``batch_pixels`` pixel centres.

        The first part holds the points; the polygons follow in their order, a part closed before the polygon
        that would take it past ``batch_pixels`` (counted as the grid pixels of each polygon's bounding box,
        an upper bound of its centres; a polygon larger than that is a part of its own, without the points,
        which ``sample_polygons`` samples strip by strip). Each part is
        sampled and drawn on its own (``training.sampling.sample_polygons``): a polygon's draw depends on it
        alone, so the parts together give what the whole does, while reading a polygon layer of millions of
        pixels holds only one part's reflectance at a time.
        """
        # the bounds alone, through one transformer (a polygon reprojected whole cost 0.4 ms, twice per file)
        transformer = Transformer.from_crs(self.crs, grid.rasterio_crs, always_xy=True)
        parts: list[list[TrainingPolygon]] = [[]]
        size = 0
        for polygon in self.polygons:
            west, south, east, north = polygon.geometry.bounds
            bounds = transformer.transform_bounds(west, south, east, north, densify_pts=21)
            pixels = bounding_box_pixels(bounds, grid)
            alone = pixels > batch_pixels and len(parts) == 1 and len(self) > 0  # not with the points
            if (parts[-1] or alone) and size + pixels > batch_pixels:
                parts.append([])
                size = 0
            parts[-1].append(polygon)
            size += pixels
        first = replace(self, polygons=tuple(parts[0]))
        none = np.empty(0, dtype=np.int64)
        rest = [
            replace(
                self,
                x=self.x[:0],
                y=self.y[:0],
                labels=self.labels[:0],
                groups=none,
                polygons=tuple(part),
                pixels=0,
            )
            for part in parts[1:]
        ]
        return [first, *rest]

    @staticmethod
    def concatenate(parts: Sequence[LabelledPoints]) -> LabelledPoints:
        """Samples of ``parts`` (``polygon_batches``' after sampling, same CRS and file) one after another."""
        if len(parts) == 1:
            return parts[0]
        groups = [p.groups for p in parts if p.groups is not None]
        if len(groups) != len(parts):
            raise ValueError("parts of polygon samples name the feature of every sample (groups)")
        return replace(
            parts[0],
            x=np.concatenate([p.x for p in parts]),
            y=np.concatenate([p.y for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            groups=np.concatenate(groups),
            pixels=sum(p.pixels for p in parts),
        )

    def take(self, keep: npt.NDArray[np.int64]) -> LabelledPoints:
        """The samples at the indexes ``keep`` (ascending)."""
        return replace(
            self,
            x=self.x[keep],
            y=self.y[keep],
            labels=self.labels[keep],
            groups=self.groups[keep] if self.groups is not None else None,
            pixels=int(np.count_nonzero(keep >= len(self) - self.pixels)),
        )


def capped_note(capped: int, max_pixels: int | None) -> list[str]:
    """The note of ``capped`` polygons sampled ``max_pixels`` pixels each (none when no polygon was)."""
    if not capped:
        return []
    return [
        f"{capped} polygon(s) hold more than {max_pixels} pixels: {max_pixels} of each sampled, "
        "valid pixels first (max_pixels_per_polygon; 0 samples every pixel)"
    ]


def _bounding_box(bounds: tuple[float, float, float, float], grid: OutputGrid) -> tuple[int, int, int, int]:
    """``(col0, col1, row0, row1)``: the grid pixels under ``bounds`` (grid CRS), cut to the grid."""
    west, south, east, north = bounds
    t = grid.transform
    col0 = max(0, int(np.floor((west - t.c) / t.a)))
    col1 = min(grid.width, int(np.ceil((east - t.c) / t.a)))
    row0 = max(0, int(np.floor((north - t.f) / t.e)))
    row1 = min(grid.height, int(np.ceil((south - t.f) / t.e)))
    return col0, col1, row0, row1


def bounding_box_pixels(bounds: tuple[float, float, float, float], grid: OutputGrid) -> int:
    """How many centres ``_pixel_centres_inside`` tests for a shape within ``bounds``: its grid pixels."""
    col0, col1, row0, row1 = _bounding_box(bounds, grid)
    return max(0, col1 - col0) * max(0, row1 - row0)


def _draw(valid: npt.NDArray[np.bool_], size: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """``size`` of a polygon's pixels (indexes, ascending), valid ones first, seeded by ``rng``.

    With every pixel valid this is the subset drawn from all pixels, as before validity counted.
    """
    ok = np.flatnonzero(valid)
    if ok.size >= size:
        return ok[np.sort(rng.choice(ok.size, size=size, replace=False))]
    bad = np.flatnonzero(~valid)
    short = bad[rng.choice(bad.size, size=size - ok.size, replace=False)]
    return np.sort(np.concatenate([ok, short])).astype(np.int64)


def _polygon_entropy(seed: int, polygon: TrainingPolygon) -> list[int]:
    """A generator seed of ``seed``, the polygon's label and its geometry (as it is in the file).

    One generator for all polygons made each subset depend on every polygon sampled before it.
    """
    import hashlib

    import shapely

    wkb = shapely.to_wkb(polygon.geometry, byte_order=1)  # little-endian: the same bytes on every machine
    digest = int.from_bytes(hashlib.sha256(wkb).digest()[:8], "little")
    return [seed & (2**64 - 1), polygon.label & (2**64 - 1), digest]


def _pixel_under(
    point: BaseGeometry, grid: OutputGrid
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The centre of the grid pixel under ``point`` (grid CRS), or empty arrays outside the grid."""
    t = grid.transform
    rows, cols = grid.pixel_index([point.x], [point.y])
    row, col = int(rows[0]), int(cols[0])
    if not (0 <= col < grid.width and 0 <= row < grid.height):
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    return np.array([t.c + (col + 0.5) * t.a]), np.array([t.f + (row + 0.5) * t.e])


CENTRE_STRIP_PIXELS = 1 << 20
"""Bounding-box pixels whose centres are tested at a time (33 bytes each while tested): a long diagonal
polygon (a river, a road) has a bounding box many times its area: 25 M pixels of one at once are 0.8 GB."""


def _pixel_centres_inside(
    shape: BaseGeometry, grid: OutputGrid, strip_pixels: int = CENTRE_STRIP_PIXELS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Coordinates of the centres of the grid's pixels that lie inside ``shape`` (grid CRS), row-major.

    The bounding box is tested in strips of rows of at most ``strip_pixels`` pixels (one row at least).
    """
    strips = list(centre_strips(shape, grid, strip_pixels))
    if not strips:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    return np.concatenate([x for x, _ in strips]), np.concatenate([y for _, y in strips])


def centre_strips(
    shape: BaseGeometry, grid: OutputGrid, strip_pixels: int = CENTRE_STRIP_PIXELS
) -> Iterator[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """``_pixel_centres_inside`` strip by strip: each strip's centres inside ``shape``, top to bottom."""
    import shapely

    col0, col1, row0, row1 = _bounding_box(shape.bounds, grid)
    t = grid.transform
    if col0 >= col1 or row0 >= row1:
        return
    shapely.prepare(shape)
    step = max(1, strip_pixels // (col1 - col0))
    for top in range(row0, row1, step):
        cols, rows = np.meshgrid(np.arange(col0, col1) + 0.5, np.arange(top, min(top + step, row1)) + 0.5)
        xs = t.c + cols * t.a
        ys = t.f + rows * t.e
        inside = np.asarray(shapely.contains_xy(shape, xs, ys), dtype=bool)
        yield xs[inside].astype(np.float64), ys[inside].astype(np.float64)


def read_vector(path: Path, what: str, error: type[TrainingError]) -> Any:
    """A vector file (any OGR format) as a GeoDataFrame; ``error`` naming ``what`` and the file otherwise.

    The file's one layer holding geometries is read (``lulc.vector_layers.geometry_layer``).
    """
    import geopandas as gpd  # heavy; only training needs it

    if not path.exists():
        raise error(missing_file(what, path))
    layer = geometry_layer(path, what, "the labelled points' layer", error)
    try:
        return gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        raise error(f"cannot read {what} {path}: {exc}") from exc


def read_points(
    path: str | Path,
    label_field: str,
    classes: ClassTable | None = None,
    points_crs: str | None = None,
) -> LabelledPoints:
    """Read labelled samples (any OGR format or a CSV with coordinate columns, any CRS); match the labels.

    Point, MultiPoint, Polygon and MultiPolygon features may be mixed; polygons are kept whole until
    ``with_polygon_pixels`` puts them on the imagery grid. A file of Points only gives exactly one sample per
    feature and no groups. Numeric labels match class ``value``s, text labels class ``name``s. Without a class
    table the table is made from the labels (``ClassTable.from_labels``).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = _read_csv_points(path, points_crs)
    else:
        frame = read_vector(path, "points file", PointsError)
    fields = [c for c in frame.columns if c != frame.geometry.name]
    if len(frame) == 0:  # first: an empty GeoJSON has no fields either (CLI review: "no field 'labels'")
        raise PointsError(f"points file {path} holds no features")
    if label_field not in frame.columns:
        raise PointsError(
            f"points file {path} has no field {label_field!r}; its fields are: {', '.join(fields) or 'none'}"
        )
    crs = _points_crs(frame.crs, points_crs, path)
    geoms = frame.geometry
    if geoms.isna().any() or geoms.is_empty.any():
        bad = [int(i) for i in np.flatnonzero(np.asarray(geoms.isna() | geoms.is_empty))][:10]
        raise PointsError(f"points file {path} has features without geometry (rows {bad})")
    kinds = set(geoms.geom_type)
    if not kinds <= POINT_KINDS | POLYGON_KINDS:
        raise PointsError(
            f"points file {path} must hold Point, MultiPoint, Polygon or MultiPolygon geometries, "
            f"found {sorted(kinds)}"
        )
    raw = frame[label_field]
    # missing, or blank text (one blank among numbers read every label as an unknown name: review)
    empty = raw.isna() | raw.map(lambda v: isinstance(v, str) and not v.strip())
    if empty.any():
        rows = [int(i) for i in np.flatnonzero(np.asarray(empty))][:10]
        if empty.all():  # a `lulc design` sample before its labels were collected (CLI review: rows 0-9 only)
            raise PointsError(
                f"points file {path}: none of its {len(frame):,} features has a {label_field!r} label: fill "
                "that field with each one's class (a sample `lulc design` drew leaves it empty)"
            )
        raise PointsError(
            f"points file {path} has {int(empty.sum()):,} of {len(frame):,} {label_field!r} labels empty "
            f"(rows {rows}{', ...' if int(empty.sum()) > len(rows) else ''})"
        )
    try:
        table = classes if classes is not None else ClassTable.from_labels(raw.tolist())
    except InputError as exc:
        raise PointsError(f"points file {path} field {label_field!r}: {exc}") from exc
    labels = match_labels(raw.tolist(), table, f"{path} field {label_field!r}")
    if kinds == {"Point"}:
        return LabelledPoints(
            source=str(path),
            crs=crs,
            x=np.asarray(geoms.x, dtype=np.float64),
            y=np.asarray(geoms.y, dtype=np.float64),
            labels=labels,
            classes=table,
            fields=fields,
        )
    return _mixed_samples(str(path), crs, list(geoms), labels, table, fields)


def _mixed_samples(
    source: str,
    crs: CRS,
    geoms: list[Any],
    labels: npt.NDArray[np.int64],
    table: ClassTable,
    fields: list[str],
) -> LabelledPoints:
    """Points and MultiPoint parts as samples grouped by feature; polygons kept for the imagery grid."""
    xs: list[float] = []
    ys: list[float] = []
    point_labels: list[int] = []
    groups: list[int] = []
    polygons: list[TrainingPolygon] = []
    for feature, (geometry, label) in enumerate(zip(geoms, labels.tolist(), strict=True)):
        if geometry.geom_type in POLYGON_KINDS:
            if not geometry.is_valid:
                from shapely.validation import explain_validity

                raise PointsError(f"polygon {feature} of {source} is invalid: {explain_validity(geometry)}")
            polygons.append(TrainingPolygon(feature, int(label), geometry))
            continue
        parts = geometry.geoms if geometry.geom_type == "MultiPoint" else [geometry]
        for part in parts:
            xs.append(float(part.x))
            ys.append(float(part.y))
            point_labels.append(int(label))
            groups.append(feature)
    return LabelledPoints(
        source=source,
        crs=crs,
        x=np.asarray(xs, dtype=np.float64),
        y=np.asarray(ys, dtype=np.float64),
        labels=np.asarray(point_labels, dtype=np.int64),
        classes=table,
        fields=fields,
        groups=np.asarray(groups, dtype=np.int64),
        polygons=tuple(polygons),
        feature_labels=labels,
    )


def _read_csv_points(path: Path, points_crs: str | None) -> Any:
    """A CSV with coordinate columns as a GeoDataFrame (lon/lat columns default to EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd

    if not path.exists():
        raise PointsError(missing_file("points file", path))
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types for unreadable text
        raise PointsError(f"cannot read points file {path}: {exc}") from exc
    lower = {str(c).lower(): c for c in table.columns}
    pair = next(((a, b) for a, b in COORDINATE_COLUMNS if a in lower and b in lower), None)
    if pair is None:
        names = ", ".join(f"{a}/{b}" for a, b in COORDINATE_COLUMNS)
        raise PointsError(f"points file {path} has no coordinate columns (one of {names})")
    x_col, y_col = lower[pair[0]], lower[pair[1]]
    coords = table[[x_col, y_col]].apply(pd.to_numeric, errors="coerce")
    if coords.isna().any().any():
        rows = [int(i) for i in np.flatnonzero(np.asarray(coords.isna().any(axis=1)))][:10]
        raise PointsError(f"points file {path} has rows without numeric coordinates (rows {rows})")
    crs = "EPSG:4326" if points_crs is None and pair in LONLAT_COLUMNS else None
    geometry = gpd.points_from_xy(coords[x_col], coords[y_col])
    return gpd.GeoDataFrame(table.drop(columns=[x_col, y_col]), geometry=geometry, crs=crs)


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
