"""One classification order end to end, for the app and the serverless handler: checks, engine, publishing."""

from __future__ import annotations

import copy
import json
import posixpath
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse, urlsplit, urlunsplit

from lulc.allowlist import AllowList
from lulc.contract import ModelContract
from lulc.errors import InputError, LimitError
from lulc.progress import Progress
from service.publish import (
    ITEM_NAME,
    S3Options,
    check_complete,
    check_destination,
    is_local,
    join_url,
    leaves_folder,
    local_path,
    output_files,
    publish,
    travelling_links,
)
from service.runner import ModelRunner
from service.settings import ServiceSettings

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from service.engine import OpenedReaders
    from service.readers import StacReaderFactory
    from service.request import ClassifyRequest


class AoiTooLargeError(LimitError):
    """The AOI (its area, or its output grid) is over the service's limit, or ``lulc classify --max-mpx``."""


@dataclass(frozen=True)
class Order:
    """A classification order, as the app and the handler receive it (model already chosen)."""

    aoi: dict[str, Any]
    datetime: str | None
    stac: str | None = None
    crs: str | None = None
    confidence: bool | None = None
    max_cloud_cover: float | None = None
    mmu_ha: float | None = None
    """Also clean the map to this minimum mapping unit (hectares) into ``clean/``."""
    mmu_connectivity: int = 4

    @classmethod
    def of(cls, body: Any) -> Order:
        """The order carried by a request body or event (any object with the same field names)."""
        return cls(**{f.name: getattr(body, f.name) for f in fields(cls) if hasattr(body, f.name)})


@dataclass(frozen=True)
class Outcome:
    """What a finished order produced, with URLs where clients (and the tiler) find it."""

    output_url: str
    """The folder holding the outputs (local path or ``s3://``), as published."""
    assets: dict[str, str]
    """Public URL of each output file (``classes.tif``, ``confidence.tif``, ``item.json``, ``stats.json``)."""
    item: dict[str, Any]
    """The result's STAC item, asset hrefs made absolute (public URLs)."""
    stats: dict[str, Any]
    tiles: dict[str, str] = field(default_factory=dict)
    """XYZ tile URL templates per raster asset, when a tiler is configured."""


def s3_options(settings: ServiceSettings) -> S3Options:
    """The output store connection from the settings."""
    return S3Options(
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.get_secret_value()
        if settings.s3_secret_access_key
        else None,
        session_token=settings.s3_session_token.get_secret_value() if settings.s3_session_token else None,
        allow_http=settings.s3_allow_http,
        virtual_hosted_style=settings.s3_virtual_hosted_style,
    )


def allow_list(settings: ServiceSettings) -> AllowList:
    """The hosts, URL prefixes and local folders this service may read from."""
    return AllowList.of(settings.allowed_hosts, settings.local_folders)


def aoi_km2(aoi: dict[str, Any] | BaseGeometry, settings: ServiceSettings) -> float:
    """The AOI's geodesic area in km², after checking it is valid GeoJSON (or parsed) and within the limit.

    Raises:
        InputError: not a valid (multi)polygon in EPSG:4326.
        AoiTooLargeError: larger than ``max_aoi_km2``.
    """
    from shapely.geometry.base import BaseGeometry

    from lulc.aoi import aoi_area_m2, parse_aoi

    area = aoi_area_m2(aoi if isinstance(aoi, BaseGeometry) else parse_aoi(aoi)) / 1e6
    if area > settings.max_aoi_km2:
        raise AoiTooLargeError(
            f"the AOI covers {area:,.4g} km², over this service's limit of {settings.max_aoi_km2:,g} km²; "
            "split it, or run `lulc classify` (optionally on Dask) for large areas"
        )
    return area


def check_model_window(order: Order, contract: ModelContract) -> None:
    """Refuse, before any work, a time window the model cannot classify: part of a year for a seasonal one.

    Raises:
        InputError: a seasonal model and a window that is not one whole calendar year.
    """
    if contract.inputs.seasons:
        from lulc.seasons import season_year

        season_year(order.datetime)


def stac_location(order: Order, settings: ServiceSettings) -> str:
    """The item source of an order (its own, or the service's default), checked and normalised."""
    return allow_list(settings).check(order.stac or settings.stac_url, "STAC source")


def tile_url(tiler_url: str, href: str) -> str:
    """The tiler's XYZ template for a COG: ``{tiler}/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url=...``."""
    return (
        f"{tiler_url.rstrip('/')}/cog/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png?url={quote(href, safe='')}"
    )


def public_href(folder: str, href: str) -> str:
    """An href of the run's item (an asset's or a link's) resolved against the public folder.

    Absolute hrefs are kept; ``../`` steps are resolved (a link to a local model or image leads up from
    the work folder). A client reads the answer's item away from the folder: relative hrefs meant nothing
    there.
    """
    if urlparse(href).scheme or href.startswith("/"):
        return href
    parts = urlsplit(folder)
    if not parts.scheme:
        return posixpath.normpath(posixpath.join(folder, href))
    return urlunsplit(parts._replace(path=posixpath.normpath(posixpath.join(parts.path or "/", href))))


def run_order(
    order: Order,
    model: ModelRunner,
    settings: ServiceSettings,
    *,
    work_dir: Path,
    destination: str | None,
    public_folder: str | None = None,
    progress: Progress | None = None,
    replace: bool = False,
    readers: OpenedReaders | None = None,
) -> Outcome:
    """Classify ``order`` with ``model`` into ``work_dir``, then publish it to ``destination``.

    Args:
        order: the AOI, time window and options.
        model: the model runner (its ONNX session is shared across orders).
        settings: the service settings (source defaults, allow-list, engine threads, store).
        work_dir: a fresh local directory the engine writes into.
        destination: where to publish (local path, ``file://`` or ``s3://``); None keeps ``work_dir``.
        public_folder: URL of the published folder as clients see it; default the destination itself.
        progress: told the number of blocks, then advanced as each is written.
        replace: publish over a run already at ``destination`` (else that is refused before any work).
        readers: the order's imagery as ``open_order`` found it; None: searched here.
    """
    from service.engine import CLEAN_DIR, classify

    request = _request(order, settings)
    if destination is not None:  # an unsupported or occupied destination fails now, not after the work
        check_destination(destination, s3=s3_options(settings), replace=replace)
    try:
        result = classify(
            request,
            model,
            readers if readers is not None else _reader_factory(order, settings),
            work_dir,
            workers=settings.workers,
            progress=progress,
            dask_scheduler=settings.dask_scheduler,
        )
        names = output_files(work_dir)
        moves = destination is not None and not same_dir(destination, work_dir)
        if moves:
            _drop_links_leaving(work_dir, names)
        if destination is None:
            folder = str(work_dir.resolve())
        else:
            folder = publish(work_dir, destination, s3=s3_options(settings), replace=replace).url
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    if destination is not None and not settings.keep_local_outputs and not same_dir(destination, work_dir):
        shutil.rmtree(work_dir, ignore_errors=True)
    public = (public_folder or folder).rstrip("/")
    assets = {name: join_url(public, name) for name in names}
    item = copy.deepcopy(travelling_links(result.item_dict) if moves else result.item_dict)
    for asset in item.get("assets", {}).values():
        if isinstance(asset, dict) and isinstance(asset.get("href"), str):
            asset["href"] = public_href(public, asset["href"])
    for link in item.get("links", []):
        if isinstance(link, dict) and isinstance(link.get("href"), str):
            # a link out of the folder (kept: nothing was published) leads to a file of this machine, not to
            # one under the public URL (diff review: the model's link became a URL no server answers)
            link["href"] = public_href(folder if leaves_folder(link["href"]) else public, link["href"])
    self_link = {"rel": "self", "href": join_url(public, ITEM_NAME), "type": "application/geo+json"}
    item["links"] = [link for link in item.get("links", []) if link.get("rel") != "self"] + [self_link]
    tiles: dict[str, str] = {}
    if settings.tiler_url:
        cleaned = f"{CLEAN_DIR}/{result.classes.name}"  # mmu_ha's map (HTTP review: it had no tile URL)
        for key, name in (
            ("classes", result.classes.name),
            ("confidence", _name(result.confidence)),
            ("clean", cleaned if cleaned in assets else None),
        ):
            if name is not None:
                tiles[key] = tile_url(settings.tiler_url, assets[name])
    # the folder as clients reach it: under output_public_url when there is one (diff review: the private
    # bucket an error no longer names was in every successful answer)
    return Outcome(output_url=public, assets=assets, item=item, stats=dict(result.stats_dict), tiles=tiles)


def _reader_factory(order: Order, settings: ServiceSettings) -> StacReaderFactory:
    """The order's STAC source, checked by the service's allow-list and limits."""
    from lulc.gdal_env import GdalAllowList
    from lulc.pixels.windows import RetryPolicy
    from lulc.sas import signer_for
    from lulc.sources import open_source
    from service.readers import StacReaderFactory

    cloud = order.max_cloud_cover if order.max_cloud_cover is not None else settings.max_cloud_cover
    allow = allow_list(settings)
    location = stac_location(order, settings)
    # SAS tokens (the Planetary Computer's) fetched within the allow-list, as the STAC is
    signer = signer_for(
        location, allow, settings.sas_token_url, settings.sas_hosts, settings.max_response_bytes
    )
    return StacReaderFactory(
        # The source checks every request, link and redirect, and normalises the asset hrefs it returns.
        open_source(
            location,
            [settings.collection],
            allow=allow,
            max_search_items=settings.max_search_items,
            max_response_bytes=settings.max_response_bytes,
        ),
        max_cloud_cover=cloud,
        # the readers check each asset href again before opening it, here with its redirects too
        allow=GdalAllowList.like(allow),
        retry=RetryPolicy(signer=signer),
        max_items=settings.max_items,
    )


def _request(order: Order, settings: ServiceSettings) -> ClassifyRequest:
    from service.request import ClassifyRequest

    return ClassifyRequest(
        aoi=order.aoi,
        datetime=order.datetime,
        crs=order.crs,
        block_size=settings.block_size,
        confidence=settings.confidence if order.confidence is None else order.confidence,
        mmu_ha=order.mmu_ha,
        mmu_connectivity=order.mmu_connectivity,
    )


def open_order(order: Order, model: ModelRunner, settings: ServiceSettings) -> OpenedReaders:
    """Search the order's imagery and check it, reading no pixel: what ``run_order`` takes as ``readers``.

    Raises:
        InputError, NoItemsError, ContractError, LimitError: no imagery, too many items, bands the model
            cannot use, an AOI narrower than a pixel, an unusable minimum mapping unit; a local file the
            order names as its source that is not STAC (the order's mistake, not an upstream's failure:
            it was a 502, HTTP review).
    """
    from lulc.errors import SourceError
    from service.engine import open_readers

    try:
        return open_readers(_request(order, settings), model.contract, _reader_factory(order, settings))
    except SourceError as exc:
        if type(exc) is SourceError and order.stac is not None and is_local(order.stac):
            raise InputError(str(exc)) from exc
        raise


def run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` resolved, or ``InputError`` if it holds no run (no ``item.json``).

    A series (``lulc classify --every``) or a model is said to be one (CLI review: "not a run folder" for a
    series, whose periods are published one by one).
    """
    from service.output import MODEL, RUNS, SERIES, product_in

    src = Path(run_dir).resolve()
    if not (src / ITEM_NAME).is_file():
        held = product_in(src) if src.is_dir() else None
        if held in (SERIES, RUNS):
            periods = sorted(p.name for p in src.iterdir() if (p / ITEM_NAME).is_file())
            example = f", e.g. {src / periods[0]}" if periods else ""
            if held == RUNS:
                raise InputError(f"{src} is a folder of runs, not a run: give one of them{example}")
            what = "a series of maps (lulc classify --every)"
            raise InputError(f"{src} is {what}: give one of its periods' folders{example}")
        if held == MODEL:
            raise InputError(f"{src} is a model (lulc train), not a run folder: give a map's folder")
        raise InputError(f"{src} is not a run folder (no {ITEM_NAME})")
    return src


def publish_run(
    run_dir: str | Path, destination: str, *, s3: S3Options | None = None, replace: bool = False
) -> str:
    """Publish a run folder as the service publishes its runs: links leaving the folder dropped, item last.

    The run folder itself is left as it is: its files are linked (else copied) into a staging folder beside
    it whose items are rewritten. Returns the destination folder.

    Raises:
        InputError: no run folder there, or a destination holding a run (unless ``replace``).
        PublishError, PublishConflictError: as ``service.publish.publish``.
    """
    import os
    import tempfile

    src = run_folder(run_dir)
    if same_dir(destination, src):
        return publish(src, destination, s3=s3, replace=replace).url
    names = output_files(src)
    check_complete(src, names)  # here, to name the run rather than the staging folder
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=src.parent))
    try:
        for name in names:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src / name, target)  # no copy of the maps; items are replaced, not edited, below
            except OSError:
                shutil.copy2(src / name, target)
        _drop_links_leaving(staging, names)
        return publish(staging, destination, s3=s3, replace=replace).url
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _drop_links_leaving(work_dir: Path, names: list[str]) -> None:
    """Rewrite (atomically) each STAC item of the run folder without its links out of the folder."""
    from service.output import dump_json, write_text_atomic

    for name in names:
        if Path(name).name != ITEM_NAME:
            continue
        path = work_dir / name
        item = json.loads(path.read_text())
        kept = travelling_links(item, name)
        if kept != item:
            write_text_atomic(path, dump_json(kept))


def _name(path: Path | None) -> str | None:
    return path.name if path is not None else None


def same_dir(destination: str, work_dir: Path) -> bool:
    """Whether ``destination`` is the local folder ``work_dir`` (publishing there leaves files in place)."""
    return is_local(destination) and local_path(destination).resolve() == work_dir.resolve()
