"""COG writing: valid COGs, deterministic bytes, and nothing at the final path when writing fails."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

from lulc.cog import CogOptions, atomic_path, write_cog


def _classes(size: int = 1200) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return ((xx // 37 + yy // 53) % 4 + 1).astype(np.uint8)


def test_write_cog_is_a_valid_deterministic_cog(tmp_path: Path) -> None:
    data = _classes()
    kwargs = {
        "crs": "EPSG:32654",
        "transform": from_origin(400000, 4000000, 10, 10),
        "nodata": 255,
        "colormap": {1: (255, 0, 0, 255), 2: (0, 255, 0, 255)},
        "options": CogOptions(overview_resampling="mode"),
    }
    a = write_cog(tmp_path / "a.tif", data, **kwargs)
    b = write_cog(tmp_path / "b.tif", data, **kwargs)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    valid, errors, warnings = cog_validate(str(a))
    assert valid, errors
    assert not warnings
    with rasterio.open(a) as src:
        assert src.block_shapes == [(512, 512)]
        assert src.overviews(1)
        assert src.nodata == 255
        assert src.colormap(1)[2] == (0, 255, 0, 255)
        overview = src.read(1, out_shape=(src.height // 4, src.width // 4))
        assert set(np.unique(overview)) <= {1, 2, 3, 4}  # MODE never invents a class
        np.testing.assert_array_equal(src.read(1), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif"]


def test_atomic_path_leaves_the_final_path_untouched_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "out.tif"
    final.write_bytes(b"previous result")

    def interrupted_write() -> None:
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert final.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]
