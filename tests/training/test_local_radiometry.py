"""Radiometry of plain rasters: explicit flags, float reflectance, scale/offset metadata, DN / 10000."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from training.errors import ImageryError
from training.imagery import open_local_imagery


def _raster(path: Path, dtype: str, scales: tuple[float, float], offsets: tuple[float, float]) -> Path:
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": 2,
        "dtype": dtype,
        "crs": "EPSG:32654",
        "transform": from_origin(400000, 4000000, 10, 10),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((2, 64, 64), 1200, dtype=dtype))
        dst.scales = scales
        dst.offsets = offsets
    return path


def test_one_scale_and_offset_from_the_metadata(tmp_path: Path) -> None:
    path = _raster(tmp_path / "a.tif", "uint16", (1e-4, 1e-4), (-0.1, -0.1))
    imagery = open_local_imagery(path, ["red", "nir"], None, None, None)
    assert (imagery.radiometry.scale, imagery.radiometry.offset) == (1e-4, -0.1)
    assert any("metadata" in note for note in imagery.notes)


def test_bands_with_different_scales_are_refused_not_read_with_band_one_s(tmp_path: Path) -> None:
    path = _raster(tmp_path / "b.tif", "uint16", (1e-4, 2e-4), (0.0, 0.0))
    with pytest.raises(ImageryError, match="different scale/offset"):
        open_local_imagery(path, ["red", "nir"], None, None, None)
    imagery = open_local_imagery(path, ["red", "nir"], None, 1e-4, 0.0)  # explicit flags win
    assert imagery.radiometry.scale == 1e-4


def test_integer_rasters_without_metadata_are_dn_over_10000(tmp_path: Path) -> None:
    path = _raster(tmp_path / "c.tif", "uint16", (1.0, 1.0), (0.0, 0.0))
    imagery = open_local_imagery(path, ["red", "nir"], None, None, None)
    assert imagery.radiometry.scale == 1e-4
    assert any("DN / 10000" in note for note in imagery.notes)


def test_an_undated_image_takes_the_recipes_datetime_else_says_its_mtime_dates_the_model(
    tmp_path: Path,
) -> None:
    """Training review: `lulc train --image x.tif --datetime 2024-06-01` ignored the date.

    `lulc classify` takes it; model.json was dated by the file's mtime without a word.
    """
    from training.config import make_config
    from training.outputs import mlm_datetime
    from training.pipeline import open_imagery
    from training.settings import TrainingSettings

    path = _raster(tmp_path / "d.tif", "uint16", (1.0, 1.0), (0.0, 0.0))  # no DateTime tag
    recipe = {"image": str(path), "points": str(tmp_path / "p.gpkg"), "bands": ["red", "nir"]}
    dated = make_config({**recipe, "datetime": "2024-06-01", "out": str(tmp_path / "m")})
    imagery = open_imagery(dated, TrainingSettings())
    assert imagery.time_window == "2024-06-01T00:00:00Z/2024-06-01T23:59:59Z"
    assert mlm_datetime(imagery, dated) == "2024-06-01T23:59:59Z"
    assert not any("acquisition date" in note for note in imagery.notes)
    undated = make_config({**recipe, "out": str(tmp_path / "m")})
    imagery = open_imagery(undated, TrainingSettings())
    assert imagery.time_window is None
    assert any("records no acquisition date" in n and "--datetime" in n for n in imagery.notes), imagery.notes
    with pytest.raises(ImageryError, match="2024-13-01"):
        open_local_imagery(path, ["red", "nir"], None, None, None, datetime="2024-13-01")
    # review: an open end dated model.json ".." (invalid STAC); classify's rule refuses it, and so does this
    for open_ended in ("2024-06-01/..", "../.."):
        with pytest.raises(ImageryError, match="open-ended"):
            open_local_imagery(path, ["red", "nir"], None, None, None, datetime=open_ended)
    offset = open_local_imagery(path, ["red", "nir"], None, None, None, datetime="2024-06-01T12:00:00+02:00")
    assert offset.time_window == "2024-06-01T10:00:00Z/2024-06-01T10:00:00Z"  # UTC, as model.json needs
