"""The tiler application: TiTiler factories for class maps and Sentinel-2 items, legend, areas, web map."""

import dataclasses
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Body, Depends, FastAPI, Query
from fastapi.responses import FileResponse, HTMLResponse
from rio_tiler.colormap import cmap as default_cmap
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from titiler.core.algorithm import algorithms as default_algorithms
from titiler.core.factory import ColorMapFactory, MultiBaseTilerFactory, TilerFactory, TMSFactory
from titiler.core.middleware import CacheControlMiddleware
from titiler.core.routing import EndpointScope
from titiler.core.utils import render_image

from lulc.classes import NODATA
from lulc.errors import LulcError
from lulc.gdal_env import answering_options, gdal_env, gdal_options
from lulc.http_guard import RequestGuard
from lulc.redaction import relative_folders
from tiler.allowlist import AllowList, allowed_path_dependency
from tiler.aoa_overlay import AoaPoint, aoa_point, hatch_png, outside_mask
from tiler.areas import (
    AreaStatistics,
    class_areas,
    item_aoa_layer,
    polygon_from_geojson,
    run_item,
    run_mapped_area,
)
from tiler.backdrop import Backdrop, backdrop_of
from tiler.caching import VaryOnAuthorization, cache_control
from tiler.colormaps import (
    ClassResolver,
    class_colormap_dependency,
    named_class_tables,
    named_colormap_dependency,
    read_required_json,
    register_class_colormaps,
)
from tiler.errors import NotARasterError, NotFoundError, add_error_handlers, error_body
from tiler.legend import Legend, legend_of, legend_png
from tiler.limits import (
    ParameterLimits,
    bounded_histogram_params,
    bounded_part_params,
    bounded_statistics_params,
    feature_limits,
    tile_limits,
)
from tiler.openapi import document_errors
from tiler.parameters import checked_dependency, checked_function, checked_reader
from tiler.readers import GTiffReader, SignerCache, allowed_stac_reader
from tiler.runs import Run, find_runs
from tiler.series import SeriesStatistics, series_areas
from tiler.settings import TilerSettings

STATIC_DIR = Path(__file__).resolve().parent / "static"
WEB_MAP_HEADERS = {
    # The page runs only its own files: text from items (class titles, ids, file names) that reached the
    # DOM as HTML could not run script even then. Leaflet sets style attributes; tiles fetched with a token
    # are shown from the page's own blob: URLs (which the token test reads back to see them revoked).
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The web map's own files; ``vendor/`` inside it is filled by ``make web`` (Leaflet from npm)."""

WEB_MAP_LIBRARY = STATIC_DIR / "vendor" / "leaflet" / "leaflet.js"
"""The web map's one library (Leaflet), copied from npm by ``make web``: without it the page cannot draw."""


def web_map_library_present() -> bool:
    """Whether the web map's library is in place (``make web``); tiles and the API work either way."""
    return WEB_MAP_LIBRARY.is_file()


MISSING_LIBRARY = (
    "warning: the web map's library (Leaflet) is missing, so the page will not draw: run `make web` "
    "(needs npm); tiles, legends and statistics work without it"
)


CACHED_PATHS = r"^/(cog|stac|aoa)/tiles/|^/legend"
"""Responses that get the configured Cache-Control header (tiles, AOA hatching, legends; not errors).

With a bearer token set it is sent ``private`` and every answer varies with ``Authorization``
(``tiler.caching``)."""

PUBLIC_PATHS = ("/healthz", "/", "/map", "/static/")
"""Served without the bearer token (when one is set): the probe and the web map's own files."""

RUNS_FOLDER_HEADER = "X-Lulc-Runs-Folder"
"""On ``GET /runs``: ``set`` when the tiler has a runs folder (``--runs``), ``none`` when not."""

PolygonBody = Annotated[
    dict[str, Any],
    Body(description="GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection in EPSG:4326."),
]
"""The polygon the statistics routes count pixels in."""


def create_app(settings: TilerSettings) -> FastAPI:
    """Build the tiler application.

    Endpoints: ``/cog`` and ``/stac`` TiTiler factories, ``/legend``, ``/statistics``, ``/runs``,
    ``/backdrop``, ``/healthz`` and the web map at ``/`` (also ``/map``).
    """
    prefixes = list(settings.allow) + ([str(settings.runs_dir)] if settings.runs_dir else [])
    allow = dataclasses.replace(
        AllowList.from_prefixes(prefixes), probe_timeout=settings.upstream_timeout_seconds
    )
    dataset_path = allowed_path_dependency(allow)
    tables = named_class_tables(settings.models_dir, settings.colormaps)
    cmaps = register_class_colormaps(default_cmap, tables)
    gdal = answering_options(settings.upstream_timeout_seconds)
    resolver = ClassResolver(
        allowed=allow.check,
        max_response_bytes=settings.max_response_bytes,
        gdal_overrides=gdal,
        timeout=settings.upstream_timeout_seconds,
    )
    env = gdal_options(gdal)

    async def gdal_environment() -> dict[str, Any]:
        # async: a copy of a dict needs no thread-pool hop (FastAPI runs plain functions in threads)
        return dict(env)

    app = FastAPI(
        title="lulc-stac tiler",
        description="Land-cover maps as coloured XYZ tiles, with legend, class areas, imagery and a web map.",
        version=version("lulc-stac"),
        # every route, included ones too
        dependencies=[
            Depends(
                ParameterLimits(settings.max_image_size, settings.max_bands, settings.max_coverage_pixels)
            )
        ],
    )

    tiles = [
        ([EndpointScope(path=path, method="GET")], [Depends(tile_limits)])
        for path in ("/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "/tiles/{tileMatrixSetId}/{z}/{x}/{y}.{format}")
    ]
    features = feature_limits(settings.max_features, settings.max_aoi_vertices)
    tiles.append(([EndpointScope(path="/statistics", method="POST")], [Depends(features)]))
    # Both factories: bounded tiles and parts, allow-listed paths, our GDAL options, no viewer.
    bounded: dict[str, Any] = {
        "add_part": False,
        "img_part_dependency": bounded_part_params(settings.max_image_size),
        "histogram_dependency": bounded_histogram_params(settings.max_histogram_bins),
        "stats_dependency": bounded_statistics_params(settings.max_histogram_bins),
        "route_dependencies": tiles,
        "path_dependency": dataset_path,
        "environment_dependency": gdal_environment,
        "process_dependency": checked_dependency(default_algorithms.dependency),
        "render_func": checked_function(render_image),
        "add_viewer": False,
    }
    cog = TilerFactory(
        reader=checked_reader(GTiffReader),
        router_prefix="/cog",
        colormap_dependency=class_colormap_dependency(cmaps, resolver, dataset_path),
        **bounded,
    )
    app.include_router(cog.router, prefix="/cog", tags=["Class maps (COG)"])

    stac = MultiBaseTilerFactory(
        reader=checked_reader(
            allowed_stac_reader(
                allow,
                settings.max_response_bytes,
                SignerCache(allow, settings.sas_token_url, settings.sas_hosts),
            )
        ),
        router_prefix="/stac",
        colormap_dependency=named_colormap_dependency(cmaps),
        **bounded,
    )
    app.include_router(stac.router, prefix="/stac", tags=["Sentinel-2 items (STAC)"])
    app.include_router(TMSFactory().router, tags=["Tiling schemes"])
    app.include_router(ColorMapFactory(supported_colormaps=cmaps).router, tags=["Colormaps"])

    @app.get("/healthz", tags=["Service"])
    def healthz() -> dict[str, Any]:
        """Liveness, versions, the registered class colormaps; the allow-list and runs folder without a token.

        With a token the probe stays public, so it names no folder of the server (HTTP review).
        """
        health = {
            "status": "ok",
            "version": version("lulc-stac"),
            "titiler": version("titiler.core"),
            "class_colormaps": sorted(tables),
            "web_map_library": web_map_library_present(),
        }
        if settings.auth_token is None:
            health["allow"] = allow.describe()
            health["runs_dir"] = str(settings.runs_dir) if settings.runs_dir else None
        return health

    app.add_api_route(  # probes and load balancers send either method
        "/healthz", healthz, methods=["HEAD"], operation_id="healthz_head", tags=["Service"]
    )

    @app.get(
        "/aoa/tiles/WebMercatorQuad/{z}/{x}/{y}.png",
        response_class=Response,
        tags=["Class maps (COG)"],
        responses={200: {"content": {"image/png": {}}, "description": "Hatching where DI > threshold."}},
        dependencies=[Depends(tile_limits)],
    )
    def aoa_tile(
        z: int,
        x: int,
        y: int,
        location: Annotated[str, Depends(dataset_path)],
        threshold: Annotated[float, Query(gt=0, le=2.54, description="The model's AOA threshold (DI).")],
    ) -> Response:
        """A run's ``aoa.tif`` as an overlay: diagonal hatching where the model extrapolates."""
        with gdal_env(gdal), GTiffReader(allow.gdal_path(location)) as src:
            image = src.tile(x, y, z, indexes=1)
        valid = ~np.ma.getmaskarray(image.array)[0]
        outside = outside_mask(np.asarray(image.array.data[0], dtype=np.uint8), valid, threshold)
        return Response(hatch_png(outside), media_type="image/png")

    @app.get("/aoa/point/{lon},{lat}", response_model=AoaPoint, tags=["Class maps (COG)"])
    def aoa_point_route(
        lon: float,
        lat: float,
        location: Annotated[str, Depends(dataset_path)],
        threshold: Annotated[float, Query(gt=0, le=2.54, description="The model's AOA threshold (DI).")],
    ) -> AoaPoint:
        """A pixel of a run's ``aoa.tif``: its DI and whether it is inside the model's area of applicability.

        The web map's identify says it beside the class (404 outside the file's bounds, as /cog/point).
        """
        with gdal_env(gdal), GTiffReader(allow.gdal_path(location)) as src:
            point = src.point(lon, lat, indexes=1)
        masked = bool(np.ma.getmaskarray(point.array)[0])
        return aoa_point(None if masked else int(point.array.data[0]), threshold)

    @app.get(
        "/legend",
        response_model=Legend,
        tags=["Class maps (COG)"],
        responses={200: {"content": {"application/json": {}, "image/png": {}}}},
    )
    def legend(
        location: Annotated[str, Depends(dataset_path)],
        format: Annotated[
            Literal["json", "png"], Query(description="JSON classes or a PNG picture.")
        ] = "json",
    ) -> Any:
        """The map's classes (value, name, colour): from its STAC item, else its colour table."""
        found = resolver.resolve(location)
        body = legend_of(location, found, NODATA)
        if format == "png":
            return Response(legend_png(body), media_type="image/png")
        return body

    @app.post("/statistics", response_model=AreaStatistics, tags=["Class maps (COG)"])
    def statistics(
        location: Annotated[str, Depends(dataset_path)],
        geojson: PolygonBody,
    ) -> AreaStatistics:
        """Per-class pixel counts and hectares inside the polygon (pixel centres inside count).

        For a run whose item lists an ``aoa`` asset, also the share of those pixels inside the model's area of
        applicability. A nodata pixel counts only on the ground the run was asked for (its item's geometry and
        ``lulc:unmapped``): a gap, not ground off a polygon AOI; a map whose item cannot tell counts them all.
        """
        geometry = polygon_from_geojson(geojson, settings.max_aoi_vertices)
        found = resolver.resolve(location)
        item = run_item(found, settings.max_response_bytes)
        aoa = item_aoa_layer(item, found.origin, allow.gdal_path) if item is not None else None
        mapped = run_mapped_area(item) if item is not None else None
        return class_areas(
            location,
            geometry,
            found.table,
            settings.statistics_max_pixels,
            aoa,
            mapped=mapped,
            gdal_overrides=gdal,
        )

    @app.post("/statistics/series", response_model=SeriesStatistics, tags=["Class maps (COG)"])
    def statistics_series(
        location: Annotated[str, Depends(dataset_path)],
        geojson: PolygonBody,
    ) -> SeriesStatistics:
        """Per-class pixel counts and hectares inside the polygon in every map of a series, period by period.

        `url` is the STAC collection `lulc classify --every` writes (`collection.json`), linking one item per
        period.
        """
        geometry = polygon_from_geojson(geojson, settings.max_aoi_vertices)
        return series_areas(
            location,
            geometry,
            allow,
            settings.statistics_max_pixels,
            settings.max_response_bytes,
            max_periods=settings.max_series_periods,
            gdal_overrides=gdal,
        )

    @app.get(
        "/runs",
        response_model=list[Run],
        tags=["Web map"],
        responses={200: {"headers": {RUNS_FOLDER_HEADER: {"description": "`set` or `none`: --runs given?"}}}},
    )
    def runs(response: Response) -> list[Run]:
        """Runs under the runs folder: folders with classes.tif and item.json, with their backdrop.

        The `X-Lulc-Runs-Folder` header says whether the tiler has a runs folder at all (`set`, `none`), so
        the web map tells "no runs in it" from "started without --runs" (naming no folder of the server).
        """
        response.headers[RUNS_FOLDER_HEADER] = "none" if settings.runs_dir is None else "set"
        if settings.runs_dir is None:
            return []
        return find_runs(settings.runs_dir, allow.check, settings.max_response_bytes)

    @app.get("/backdrop", response_model=Backdrop, tags=["Web map"])
    def backdrop(location: Annotated[str, Depends(dataset_path)]) -> Backdrop:
        """True- and false-colour composites of a Sentinel-2 item, as /stac/tiles parameters."""
        item = read_required_json(location, "STAC item", max_bytes=settings.max_response_bytes)
        if item is None:
            raise NotFoundError(f"no STAC item (JSON object) at {location}")
        try:
            return backdrop_of(location, item)
        except LulcError as exc:
            raise NotARasterError(str(exc)) from None

    def web_map() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=WEB_MAP_HEADERS)

    app.add_api_route("/", web_map, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/map",
        web_map,
        methods=["GET"],
        tags=["Web map"],
        summary="The web map.",
        response_class=HTMLResponse,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    app.state.hidden_texts = relative_folders(prefixes)  # answers name files by the folders as set
    add_error_handlers(app)
    document_errors(app, protected=settings.auth_token is not None, public=PUBLIC_PATHS)
    app.add_middleware(
        RequestGuard,
        error_body=error_body,
        max_body_bytes=settings.max_body_bytes,
        token=settings.auth_token.get_secret_value() if settings.auth_token else None,
        public_paths=PUBLIC_PATHS,
        logger="tiler.app",
        body_timeout_seconds=settings.body_timeout_seconds,
        max_body_requests=settings.max_body_requests,
        max_body_requests_per_client=settings.max_body_requests_per_client,
        retry_after_seconds=settings.retry_after_seconds,
    )
    protected = settings.auth_token is not None
    app.add_middleware(
        CacheControlMiddleware,
        cachecontrol=cache_control(settings.cache_control, protected),
        cachecontrol_max_http_code=400,
        exclude_path={rf"^(?!{CACHED_PATHS[1:]})"},
    )
    if protected:  # outside the token check: its 401s vary with the header too
        app.add_middleware(VaryOnAuthorization)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )
    return app
