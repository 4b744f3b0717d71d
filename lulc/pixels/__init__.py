"""The one pixel reader: reflectance of a grid's blocks, for training samples and classification alike.

Training samples its points and the classifier reads its blocks through these readers, on grids from
``lulc.grid`` (``grid_for_aoi`` or an image's own grid), with one scaling (``to_reflectance``), so a
model sees at inference exactly the pixels it was trained on (``tests/lulc/test_pixel_skew.py``).
"""

from lulc.pixels.image import (
    MAX_REFLECTANCE_MEDIAN,
    SCALE_ADVICE,
    ImageBlockReader,
    ImageScaling,
    given_scaling,
    image_band_indexes,
    image_datetime,
    image_scaling,
    open_image,
    open_image_reader,
)
from lulc.pixels.stac import COMPOSITES, ItemAssets, StacBlockReader, item_assets
from lulc.pixels.stacked import StackedBlockReader
from lulc.pixels.types import (
    REASONS,
    REFLECTANCE_RESAMPLING,
    SCL_RESAMPLING,
    Array,
    BlockPixels,
    BlockReader,
    PixelReader,
    SourceRef,
    Status,
    to_reflectance,
)
from lulc.pixels.windows import (
    RetryPolicy,
    aligned_offset,
    gdal_path,
    read_aligned,
    read_warped,
    read_window,
)

__all__ = [
    "COMPOSITES",
    "MAX_REFLECTANCE_MEDIAN",
    "REASONS",
    "REFLECTANCE_RESAMPLING",
    "SCALE_ADVICE",
    "SCL_RESAMPLING",
    "Array",
    "BlockPixels",
    "BlockReader",
    "ImageBlockReader",
    "ImageScaling",
    "ItemAssets",
    "PixelReader",
    "RetryPolicy",
    "SourceRef",
    "StacBlockReader",
    "StackedBlockReader",
    "Status",
    "aligned_offset",
    "gdal_path",
    "given_scaling",
    "image_band_indexes",
    "image_datetime",
    "image_scaling",
    "item_assets",
    "open_image",
    "open_image_reader",
    "read_aligned",
    "read_warped",
    "read_window",
    "to_reflectance",
]
