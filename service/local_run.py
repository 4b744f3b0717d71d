"""A classification run on this machine, checked and prepared once for ``lulc classify`` and ``service.api``.

The command line and the Python API took the same options and checked them apart: the API had no
``image_bands``, ``collection`` or ``max_cloud_cover``, and skipped the output CRS and workers checks (a CRS
in US feet made pixels of 10 ft). Both now go through ``prepare_run``, in the same order, with the same
messages (they name the command's options, as every message of the API does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lulc.aoi import geojson_aoi
from lulc.errors import InputError

if TYPE_CHECKING:
    from service.readers import ReaderFactory
    from service.request import ClassifyRequest
    from service.runner import ModelRunner


DEFAULT_MAX_MPX = 10_000.0
"""``--max-mpx``'s default: 10 Gpx, a 100 x 100 km AOI at 10 m ten times over (an hour or more on 2 cores);
an AOI of 20 x 10 degrees made 600 Gpx, 2.3 million blocks, and started them."""


@dataclass(frozen=True)
class LocalRun:
    """What the engine takes: the request, the loaded model and the source's reader factory."""

    request: ClassifyRequest
    runner: ModelRunner
    factory: ReaderFactory


def prepare_run(
    model: str | Path,
    *,
    out: Path,
    image: Path | None = None,
    image_bands: Sequence[str] | None = None,
    scale: float | None = None,
    offset: float | None = None,
    stac: str | None = None,
    collection: Sequence[str] | None = None,
    max_cloud_cover: float | None = None,
    aoi: object = None,
    when: object = None,
    crs: str | None = None,
    block_size: int = 512,
    confidence: bool = True,
    probabilities: bool = False,
    aoa: bool = True,
    sets: bool = True,
    mmu_ha: float | None = None,
    mmu_connectivity: int = 4,
    workers: int = 2,
    threads: int = 1,
    every: str | None = None,
    dask_scheduler: str | None = None,
    max_mpx: float = DEFAULT_MAX_MPX,
) -> LocalRun:
    """Check every option before any work (the cheap ones first), load the model, build the source.

    ``aoi``: a GeoJSON mapping, anything with ``__geo_interface__`` in lon/lat (a shapely geometry), a
    GeoDataFrame (reprojected to lon/lat), a file's path or ``w,s,e,n``. ``when``: the ``--datetime`` text,
    or a ``date`` / ``datetime``.

    ``max_mpx``: the largest output grid of a ``--stac`` run (its AOI's bounding box at the model's
    resolution), in megapixels: a mistyped AOI stops here, not after days of blocks.

    Raises:
        InputError, ContractError: bad options, a model that cannot be loaded, an output CRS not in metres.
        AoiTooLargeError: a ``--stac`` run whose grid is over ``max_mpx``.
    """
    from lulc.allowlist import AllowList
    from lulc.pixels.windows import RetryPolicy
    from lulc.sas import signer_for
    from service.output import SERIES, check_out_folder
    from service.output_crs import check_output_crs, check_output_grid
    from service.readers import ImageReaderFactory, StacReaderFactory, check_image_path
    from service.request import ClassifyRequest
    from service.runner import load_model

    if (stac is None) == (image is None):
        raise InputError("give exactly one of --stac URL_OR_PATH and --image FILE")
    check_out_folder(out, SERIES if every is not None else None)
    if aoi is None and image is None:
        raise InputError("--aoi is required with --stac")
    if when is None and image is None:  # as the service requires it (review: every year was mixed)
        raise InputError(
            "--datetime is required with --stac: the time window whose imagery is composited, e.g. "
            "2024-06-01/2024-08-31 (.. for an open end)"
        )
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not max_mpx > 0:  # also NaN
        raise InputError(f"--max-mpx must be above 0, got {max_mpx}")
    if every is not None and image is not None:
        raise InputError("--every needs a STAC source (--stac): an image is one acquisition")
    if image_bands is not None and image is None:
        raise InputError("--image-bands names the bands of an --image")
    if (scale is not None or offset is not None) and image is None:
        raise InputError("--scale and --offset read an --image's values: STAC items carry their own scaling")
    if scale is not None and not (math.isfinite(scale) and scale != 0):
        raise InputError(f"--scale must be a finite number other than 0, got {scale}")
    if offset is not None and not math.isfinite(offset):
        raise InputError(f"--offset must be a finite number, got {offset}")
    if image is not None:
        check_image_path(image)
    if stac is not None and "://" not in str(stac) and Path(stac).is_dir():  # CLI review: allow-list words
        found = sorted(p.name for p in Path(stac).glob("*.json"))[:3]
        raise InputError(
            f"--stac {stac} is a folder: give its STAC catalog, collection or item file"
            + (f" (it holds {', '.join(found)})" if found else "")
        )
    request = ClassifyRequest(
        aoi=geojson_aoi(aoi),
        datetime=datetime_text(when),
        crs=crs,
        block_size=block_size,
        confidence=confidence,
        probabilities=probabilities,
        aoa=aoa,
        sets=sets,
        mmu_ha=mmu_ha,
        mmu_connectivity=mmu_connectivity,
    )
    if every is not None:
        from service.series import split_periods

        split_periods(request.datetime, every)  # a bad step or window fails before the model is loaded
    if dask_scheduler is not None:
        from service.dask_runner import check_scheduler

        check_scheduler(dask_scheduler)  # not after the imagery is found
    runner = load_model(model, threads=threads)
    resolution = runner.contract.inputs.resolution
    if image is None and request.aoi is not None:  # an --image bounds its own grid
        check_output_grid(  # the output CRS as the service checks it, and the grid's size
            crs,
            request.aoi,
            resolution,
            int(min(max_mpx * 1e6, 2**62)),
            limit=f"--max-mpx {max_mpx:,.12g}",  # as given: 0.04 is not 0.0, 1234567 not 1.23457e+06
            advice="raise --max-mpx to classify it all, or classify its parts apart",
        )
    else:
        check_output_crs(crs, request.aoi, resolution)  # as the service does
    factory: ReaderFactory
    if image is not None:
        names = tuple(_names(image_bands)) if image_bands else None
        factory = ImageReaderFactory(image, image_bands=names, scale=scale, offset=offset)
    else:
        collections = (collection,) if isinstance(collection, str) else tuple(collection or ())
        # the Planetary Computer's imagery is read with its SAS tokens, fetched as the command fetches STAC
        signer = signer_for(str(stac), AllowList.anything())
        factory = StacReaderFactory(
            str(stac),
            collections=collections or None,
            max_cloud_cover=max_cloud_cover,
            retry=RetryPolicy(signer=signer),
        )
    return LocalRun(request, runner, factory)


def _names(bands: Sequence[str]) -> list[str]:
    """Band names as given, or split at commas from one text (``"blue,green,red"``, as the command takes)."""
    return [b.strip() for b in bands.split(",")] if isinstance(bands, str) else list(bands)


def datetime_text(when: object) -> str | None:
    """``--datetime``'s text of a ``date`` or ``datetime`` (ISO 8601), else the value as given.

    Raises:
        InputError: neither text nor a date.
    """
    if when is None or isinstance(when, str):
        return when
    if isinstance(when, datetime):  # one without a time zone is read as the text would be
        return when.isoformat().replace("+00:00", "Z")
    if isinstance(when, date):
        return when.isoformat()
    raise InputError(f"the datetime must be RFC 3339 text or a date, got {type(when).__name__}")


UNMAPPED_NOTE = 0.01
"""Share of the AOI without a class above which a run says so (clouds, or past the imagery)."""


def unmapped_note(stats: Mapping[str, Any], local_image: bool = False) -> str | None:
    """The note of a run whose AOI is partly without class: its areas are of the mapped part (AOI review).

    Of a local image (``--image``), the cause is its edge or its nodata, not clouds (README review). None when
    the AOI is mapped but for ``UNMAPPED_NOTE`` of it. ``lulc classify`` prints it; ``service.api`` keeps it.
    """
    mapped = stats.get("mapped_fraction")
    if mapped is None or 1.0 - mapped <= UNMAPPED_NOTE:
        return None
    why = (
        "no valid pixel of the image there: past its edge, or its nodata"
        if local_image
        else "no clear observation: clouds, shadows, or no imagery there"
    )
    return (
        f"{100 * (1.0 - mapped):.1f} % of the AOI's {stats['aoi_pixels']:,} pixels have no class ({why}); "
        "the class areas are of the mapped part"
    )
