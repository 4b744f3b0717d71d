"""Cloud-Optimised GeoTIFFs through GDAL's COG driver, written atomically: never half a file in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import Affine

from lulc.gdal_env import gdal_env

Resampling = Literal["nearest", "mode", "average", "bilinear"]


@dataclass(frozen=True)
class CogOptions:
    """Creation options of a COG: 512 internal tiles, lossless compression, overviews."""

    blocksize: int = 512
    compress: Literal["deflate", "zstd", "lzw"] = "deflate"
    overview_resampling: Resampling = "nearest"
    predictor: Literal[1, 2] = 1
    level: int = 6
    extra: Mapping[str, str] = field(default_factory=dict)

    def creation_options(self) -> dict[str, str]:
        """GDAL COG-driver creation options."""
        options = {
            "BLOCKSIZE": str(self.blocksize),
            "COMPRESS": self.compress.upper(),
            "LEVEL": str(self.level),
            "PREDICTOR": "YES" if self.predictor == 2 else "NO",  # the COG driver's spelling
            "OVERVIEWS": "IGNORE_EXISTING",
            "OVERVIEW_RESAMPLING": self.overview_resampling.upper(),
            "NUM_THREADS": "1",  # single-threaded compression keeps output bytes reproducible
            "BIGTIFF": "IF_SAFER",
        }
        options.update(self.extra)
        return options


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = ".tif") -> Iterator[Path]:
    """A temporary path beside ``final``, renamed onto it only if the block completes.

    On any exception the temporary file is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".partial{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be served and shared
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, Path(f"{tmp}.aux.xml")):
            leftover.unlink(missing_ok=True)


def translate_to_cog(src: str | Path, dst: str | Path, options: CogOptions | None = None) -> Path:
    """Copy any GDAL-readable raster to a COG at ``dst`` (atomically)."""
    opts = options or CogOptions()
    dst = Path(dst)
    with gdal_env(), atomic_path(dst) as tmp:
        rasterio.shutil.copy(str(src), str(tmp), driver="COG", **opts.creation_options())
    return dst


def write_cog(
    dst: str | Path,
    data: npt.NDArray[Any],
    *,
    crs: CRS | str,
    transform: Affine,
    nodata: float | None,
    options: CogOptions | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
    band_descriptions: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Write an in-memory array ``(bands, rows, cols)`` (or ``(rows, cols)``) as a COG at ``dst``."""
    array = data[np.newaxis] if data.ndim == 2 else data
    count, height, width = array.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": array.dtype.name,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }
    with gdal_env(), rasterio.MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(array)
            if colormap is not None:
                tmp.write_colormap(1, dict(colormap))
            if band_descriptions is not None:
                for i, desc in enumerate(band_descriptions, start=1):
                    tmp.set_band_description(i, desc)
            if tags:
                tmp.update_tags(**tags)
        return translate_to_cog(mem.name, dst, options)
