"""The classifier service's HTTP API (``lulc serve``): classify AOIs, poll jobs, list models, health."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from lulc.errors import LulcError
from lulc.http_guard import RequestGuard
from lulc.http_status import public_detail
from service.http_errors import error_body, server_texts, status_for
from service.job_store import JobStore
from service.jobs import BusyError, Job, JobRegistry, JobState
from service.model_registry import ModelDirectory, ModelInfo, ModelProvider
from service.output_crs import check_aoi, check_before_aoi
from service.publish import ITEM_NAME, destination_folder, join_url
from service.request import MAX_MMU_HA
from service.runner import ModelRunner
from service.settings import ServiceSettings
from service.workflow import Order, Outcome, open_order, run_order, same_dir

log = logging.getLogger("service.app")

_EXAMPLE_AOI = {
    "type": "Polygon",
    "coordinates": [[[13.40, 52.50], [13.42, 52.50], [13.42, 52.51], [13.40, 52.51], [13.40, 52.50]]],
}


# --- request and response bodies ---------------------------------------------------------------


class ClassifyBody(BaseModel):
    """A classification request."""

    model_config = ConfigDict(extra="forbid")

    aoi: dict[str, Any] = Field(
        description="Area of interest: GeoJSON (Multi)Polygon, Feature or FeatureCollection in EPSG:4326.",
        examples=[_EXAMPLE_AOI],
    )
    datetime: str = Field(
        min_length=1,
        max_length=100,
        description="Time window of the input imagery, RFC 3339 interval (open ends as `..`).",
        examples=["2024-06-01/2024-08-31"],
    )
    model: str = Field(
        min_length=1, max_length=200, description="Model id, as listed by `GET /models`.", examples=["demo"]
    )
    stac: str | None = Field(
        default=None,
        max_length=2048,
        description="Item source (STAC API or static catalog URL) instead of the service's default; "
        "its host must be on the allow-list.",
    )
    crs: str | None = Field(
        default=None,
        max_length=200,
        description="Output CRS: projected, in metres (`EPSG:nnnn`); default: the AOI's UTM zone.",
    )
    confidence: bool | None = Field(
        default=None, description="Also write the confidence COG; default: the service's setting."
    )
    max_cloud_cover: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Skip items with more cloud cover (`eo:cloud_cover`, %) than this: items at exactly this "
        "value are used (0: cloud-free items only); default: the service's setting, else the model's limit.",
    )
    mmu_ha: float | None = Field(
        default=None,
        ge=0,
        le=MAX_MMU_HA,
        description="Also clean the map to this minimum mapping unit (hectares), with GDAL's sieve rule: a "
        "patch smaller than it takes the class of the first patch at least this large found by following "
        "largest neighbours (its own, then that one's, ...); with no such patch on the way it stays as it "
        "is, so a unit larger than every patch changes nothing. The cleaned run is published in `clean/` and "
        "its files are listed in `assets`.",
    )
    mmu_connectivity: Literal[4, 8] = Field(
        default=4, description="Patch connectivity of `mmu_ha`: 4 (edges) or 8 (edges and corners)."
    )

    @field_validator("datetime")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "the time window is blank; give an RFC 3339 interval such as 2024-06-01/2024-08-31"
            )
        return value.strip()


class ErrorBody(BaseModel):
    """Every error response."""

    detail: Any = Field(description="What went wrong (a message; a list of problems for malformed bodies).")
    type: str = Field(description="The error's type, e.g. `InputError`, `LimitError`, `BusyError`.")


class ClassifyResult(BaseModel):
    """A finished classification: output and tile URLs, stats, its STAC item (in a poll: the item's URL)."""

    job_id: str
    status: Literal["succeeded"] = "succeeded"
    area_km2: float = Field(description="Geodesic area of the AOI.")
    output_url: str = Field(
        description=(
            "Folder holding the outputs, as clients reach it: under `output_public_url` when the service has "
            "one, else where they were written (local path, `file:` or `s3://bucket/prefix`)."
        )
    )
    assets: dict[str, str] = Field(description="URL of each output file (classes.tif, confidence.tif, ...).")
    tiles: dict[str, str] = Field(
        description="XYZ tile URL templates per raster (`classes`, `confidence`, and `clean` for the map "
        "cleaned to `mmu_ha`); empty without a tiler."
    )
    item_url: str | None = Field(
        default=None, description="URL of the result's STAC item (`item.json` of `assets`)."
    )
    item: dict[str, Any] | None = Field(
        default=None,
        description="The result's STAC item (classification:classes, proj, raster, ...), in the answer to "
        "`POST /classify` (200). `null` in a job's poll (`GET /jobs/{id}`): the item holds the AOI's whole "
        "geometry, which the service does not keep for finished jobs; read it at `item_url`.",
    )
    stats: dict[str, Any] = Field(description="Class areas in hectares and pixel counts.")


@dataclass(frozen=True)
class JobSummary:
    """What the service keeps of a finished classification for polls: an ``Outcome`` without its item.

    The item holds the AOI's geometry (a 90,000-vertex AOI made 14 MB per job in memory); its URL is among
    ``assets``. Kept in memory and in the job's record (``service.job_store``) for ``max_finished_jobs`` jobs.
    """

    output_url: str
    assets: dict[str, str]
    tiles: dict[str, str]
    stats: dict[str, Any]

    @classmethod
    def of(cls, outcome: Outcome | JobSummary) -> JobSummary:
        """The summary of an outcome (a summary as it is)."""
        if isinstance(outcome, JobSummary):
            return outcome
        return cls(outcome.output_url, dict(outcome.assets), dict(outcome.tiles), dict(outcome.stats))


class JobProgress(BaseModel):
    """Blocks classified so far."""

    done: int
    total: int


class JobStatus(BaseModel):
    """A classification job."""

    job_id: str
    status: Literal["running", "succeeded", "failed", "cancelled"]
    href: str = Field(description="Where to poll this job: its path on this service (e.g. `/jobs/{id}`).")
    area_km2: float
    created: datetime
    finished: datetime | None = None
    progress: JobProgress | None = None
    result: ClassifyResult | None = Field(default=None, description="Set once the job succeeded.")
    error: ErrorBody | None = Field(default=None, description="Set if the job failed or was cancelled.")
    error_status: int | None = Field(
        default=None,
        description="HTTP status the error would have had (one of `POST /classify`'s; 503: the service "
        "restarted while the job ran, submit it again; 409: the job was cancelled).",
    )


class ModelSummary(BaseModel):
    """A model the service can run."""

    id: str
    name: str | None = None
    version: str | None = None
    model_type: str | None = None
    bands: list[str] = Field(default_factory=list)
    indices: list[str] = Field(default_factory=list)
    resolution: float | None = Field(default=None, description="Output resolution in metres.")
    classes: list[dict[str, Any]] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="Why the model cannot be loaded, if it cannot.")


class ModelList(BaseModel):
    """The models on offer."""

    models: list[ModelSummary]


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"
    version: str
    running_jobs: int
    max_concurrent_jobs: int


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Invalid input (AOI geometry, datetime, CRS).",
        401: "Missing or wrong bearer token (when the service has one).",
        403: "A URL is not on the allow-list.",
        404: "Unknown model or job, or no imagery for the AOI and time window.",
        409: "The job has already finished: there is nothing to cancel.",
        408: "The request body did not arrive within `body_timeout_seconds`.",
        413: "Request body, AOI area or AOI vertex count over this service's limit.",
        422: "Malformed body, a model that cannot run on these inputs, or no valid pixels.",
        429: "Every job slot, or every place for a request being read, is busy; retry after `Retry-After` s.",
        500: "Internal error (a bug): the body names only the exception type; the log has the rest.",
        502: "An upstream STAC API, COG server or output store failed.",
        503: "The Dask cluster (when configured) has no worker yet; retry once its workers are up.",
    }.items()
}
for _status in (429, 503):
    ERRORS[_status]["headers"] = {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
    }

AOI_CHECKS_AT_ONCE = 2
"""Requests whose AOI is checked (parsed, measured, gridded: up to seconds of CPU for a large one) at once;
others wait for a turn without holding a thread, so polls, ``/models`` and ``/healthz`` are answered
meanwhile."""


JSON_PARSES_AT_ONCE = 2
"""Request bodies parsed from JSON at once (``_json_in_threads``)."""


def _json_in_threads(parsing: anyio.CapacityLimiter, posts: Admission) -> type[APIRoute]:
    """A route class parsing JSON request bodies in worker threads, ``parsing`` bounding how many at once.

    FastAPI reads a JSON body with ``Request.json``, which Starlette parses in the event loop: a 2.5 MB AOI
    took 0.2 s there, and 20 of them at once held ``/healthz`` for 6 s (FastAPI's custom route class).
    A POST is admitted by ``posts`` before its body is read (else ``BusyError``, 429); its body must arrive
    within ``body_timeout_seconds`` (``RequestGuard``: else 408): ten clients sending a brace and then
    nothing held every place.
    """

    class ThreadedJsonRequest(Request):
        async def json(self) -> Any:
            if not hasattr(self, "_parsed"):
                body = await self.body()
                self._parsed = await anyio.to_thread.run_sync(_parse_json, body, limiter=parsing)
            return self._parsed

    class ThreadedJsonRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def route(request: Request) -> Response:
                if request.method != "POST":
                    return await handle(ThreadedJsonRequest(request.scope, request.receive))
                with posts.admitted():
                    wrapped = ThreadedJsonRequest(request.scope, request.receive)
                    await wrapped.body()  # kept on the request (FastAPI's parse reads it); timed by the guard
                    return await handle(wrapped)

            return route

    return ThreadedJsonRoute


def _parse_json(body: bytes) -> Any:
    """``json.loads``, whose every refusal of the body is a ``JSONDecodeError`` (FastAPI's 422).

    Nesting deeper than Python's recursion limit and integers longer than its 4,300 digits raised other
    errors, which FastAPI answered with a 400 of its own (HTTP review).
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        raise json.JSONDecodeError(f"{type(exc).__name__}: {exc}", "", 0) from None


class Admission:
    """How many POSTs may be in the app at once (read, parsed, checked or classified within the request).

    A body waiting for its turn at the AOI checks was held parsed: 60 requests of 3.8 MB at once (refused
    with 413 in the end, by their vertex count) took the service from 151 MB to 1.2 GB, 2 GiB being its pod's
    limit, and held ``/healthz`` for 2.7 s (review). Beyond the limit: 429 before the body is read.
    """

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.inside = 0  # the event loop's thread alone counts: no lock

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """One more request inside, or ``BusyError``."""
        if self.inside >= self.limit:
            inside = f"{self.inside} classification requests are being read, checked or run"
            raise BusyError.at_limit(inside, self.limit, self.retry_after)
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1


class AoiCheck(Protocol):
    """The costly checks of an order's AOI, its area in km² (``service.output_crs.check_aoi``)."""

    def __call__(self, order: Order, settings: ServiceSettings, resolution: float) -> float: ...


GUARDED = (400, 408, 413)
"""What ``RequestGuard`` answers on any route: a malformed ``Content-Length`` (400), a body that does not
arrive in time (408) or over the limit (413), a GET sent with a body too."""


def _only(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in sorted({*codes, *GUARDED})}


# --- the app -----------------------------------------------------------------------------------


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler of our errors, HTTP errors and validation errors: ``{detail, type}``.

    Registered for these classes only, never for ``Exception``: Starlette re-raises after an
    ``Exception`` handler's answer and uvicorn then drops the kept-alive connection. Anything else is
    answered by ``RequestGuard`` (a JSON 500, logged once).
    """
    headers: dict[str, str] = {}
    if isinstance(exc, RequestValidationError):
        status, body = 422, {"detail": jsonable_errors(exc), "type": "RequestValidationError"}
    elif isinstance(exc, HTTPException):
        status, body = exc.status_code, {"detail": exc.detail, "type": "HTTPException"}
        headers.update(exc.headers or {})
    else:
        status, body = status_for(exc), error_body(exc, getattr(request.app.state, "hidden_texts", None))
        if isinstance(exc, BusyError):
            headers["Retry-After"] = str(exc.retry_after)
        elif status == 503:  # no Dask worker yet: they may be starting
            headers["Retry-After"] = str(request.app.state.retry_after_seconds)
        if status >= 500:
            log.error(
                "%s %s failed: %s",
                request.method,
                request.url.path,
                public_detail(exc),  # whole: the operator's log may name the set-up
                exc_info=exc if status == 500 else None,
            )
    return JSONResponse(body, status_code=status, headers=headers)


def _guard_body(status: int, detail: str, kind: str) -> dict[str, Any]:
    return {"detail": detail, "type": kind}


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's error list without the raw input values (which may be a large AOI)."""
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]


BEARER = HTTPBearer(auto_error=False, description="The token of `LULC_SERVICE_AUTH_TOKEN`, when it is set.")
"""Declares the bearer scheme in OpenAPI; ``RequestGuard`` checks the token, before the body is read."""


def _bearer_declared(_: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    """Nothing to do: the token was checked by ``RequestGuard`` (on every route but ``/healthz``)."""


def create_app(
    settings: ServiceSettings, *, models: ModelProvider | None = None, aoi_check: AoiCheck = check_aoi
) -> FastAPI:
    """The service app for ``settings``.

    Args:
        settings: the service's settings (read once, here; nothing is read at import).
        models: where models come from; default the ``settings.models_dir`` directory.
        aoi_check: the checks of a request's AOI, run after every cheaper one, ``AOI_CHECKS_AT_ONCE`` at a
            time in worker threads (a test may hand in its own, e.g. to count or hold them).
    """
    if settings.output_url:
        destination_folder(settings.output_url)  # refuse an unsupported output URL at start-up
    provider: ModelProvider = models or ModelDirectory(
        settings.models_dir, threads=settings.threads, public_url=settings.models_public_url
    )
    registry = JobRegistry(
        settings.max_concurrent_jobs,
        keep=settings.max_finished_jobs,
        retry_after=settings.retry_after_seconds,
        store=JobStore(settings.output_dir),  # finished jobs outlive a restart; sweeps killed runs' staging
        scratch=settings.output_url is not None  # job folders published elsewhere, then removed
        and not settings.keep_local_outputs
        and not same_dir(settings.output_url, settings.output_dir),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        registry.shutdown(wait=False)  # running jobs finish in their threads; no new ones start

    app = FastAPI(
        lifespan=lifespan,
        title="lulc-stac classifier",
        version=_version(),
        description=(
            "Classifies an area of interest with an ONNX land-cover model on STAC imagery and returns a "
            "categorical COG, its STAC item and tile URLs. Small AOIs are answered at once; larger ones "
            "become jobs to poll."
        ),
        openapi_tags=[
            {"name": "classify", "description": "Classify an AOI and follow the job."},
            {"name": "models", "description": "The models this service runs."},
            {"name": "health", "description": "Liveness for probes."},
        ],
    )
    app.state.retry_after_seconds = settings.retry_after_seconds
    for exc_type in (LulcError, HTTPException, RequestValidationError):
        app.add_exception_handler(exc_type, _error_response)
    app.add_middleware(
        RequestGuard,
        error_body=_guard_body,
        max_body_bytes=settings.max_body_bytes,
        token=settings.auth_token.get_secret_value() if settings.auth_token else None,
        public_paths=("/healthz",),
        logger="service.app",
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    if settings.cors_origins:  # outside the guard: preflights need no token
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],  # a job's URL, a 429's wait: for pages' scripts too
        )
    app.state.settings = settings
    app.state.hidden_texts = server_texts(settings)  # what answers say of the set-up instead (HTTP review)
    app.state.jobs = registry
    aoi_turns = anyio.CapacityLimiter(AOI_CHECKS_AT_ONCE)

    def public_folder(job_id: str) -> str:
        base = settings.output_public_url or settings.output_url or str(settings.output_dir.resolve())
        return join_url(base, job_id)

    def result_of(job: Job, summary: JobSummary, item: dict[str, Any] | None = None) -> ClassifyResult:
        return ClassifyResult(
            job_id=job.id,
            area_km2=float(job.info.get("area_km2", 0.0)),
            output_url=summary.output_url,
            assets=summary.assets,
            tiles=summary.tiles,
            item_url=summary.assets.get(ITEM_NAME),
            item=item,
            stats=summary.stats,
        )

    def status_of(request: Request, job: Job) -> JobStatus:
        status = JobStatus(
            job_id=job.id,
            status=job.state.value,
            # a path, not a URL: url_for takes its host from the request's Host header, which the client
            # sets (Host: evil.example gave Location: http://evil.example/jobs/...)
            href=request.scope.get("root_path", "").rstrip("/")
            + request.app.url_path_for("get_job", job_id=job.id),
            area_km2=float(job.info.get("area_km2", 0.0)),
            created=job.created,
            finished=job.finished,
            progress=JobProgress(done=job.progress[0], total=job.progress[1]) if job.progress else None,
        )
        if job.state is JobState.SUCCEEDED:
            status.result = result_of(job, JobSummary.of(job.result))  # a record of before: an Outcome
        elif job.state in (JobState.FAILED, JobState.CANCELLED) and job.error is not None:
            status.error = ErrorBody(**error_body(job.error, app.state.hidden_texts))
            status.error_status = status_for(job.error)
        return status

    # The schema states the statuses this app really sends: 401 only when it has a token.
    protected = APIRouter(
        dependencies=[Depends(_bearer_declared)] if settings.auth_token else [],
        route_class=_json_in_threads(
            anyio.CapacityLimiter(JSON_PARSES_AT_ONCE),
            Admission(
                settings.max_concurrent_jobs + settings.max_waiting_requests, settings.retry_after_seconds
            ),
        ),
    )
    auth = (401,) if settings.auth_token else ()

    @protected.post(
        "/classify",
        tags=["classify"],
        summary="Classify an AOI",
        response_model=ClassifyResult,
        responses={
            202: {
                "model": JobStatus,
                "description": "Accepted: a job to poll at `Location`.",
                "headers": {
                    "Location": {"description": "The job's path (its `href`).", "schema": {"type": "string"}}
                },
            },
            **_only(
                400,
                *auth,
                403,
                404,
                408,
                413,
                422,
                429,
                500,
                502,
                *((503,) if settings.dask_scheduler else ()),
            ),
        },
    )
    async def classify(body: ClassifyBody, request: Request) -> ClassifyResult | JSONResponse:
        """Classify `aoi` over `datetime` with `model`.

        AOIs up to `sync_max_km2` are classified within the request: 200 with the STAC item, output
        URLs and tile URLs. Larger ones (up to `max_aoi_km2`) get 202 and a job to poll at
        `GET /jobs/{id}`. Either way the imagery is searched first: no items over the AOI and window
        (404) or more than the service's limit (413) answer the request itself. When
        `max_concurrent_jobs` jobs are running, 429 with `Retry-After`. A synchronous request whose client
        goes away (a timeout, a closed page) cancels its job, freeing its slot.
        """
        order = Order.of(body)
        # Input errors answer now, not as failed jobs; the cheap ones first: an unknown model (404), a bad
        # time window or CRS costs no parsing of the AOI, however large.
        model = await anyio.to_thread.run_sync(checked_model, order, body.model)
        area = await anyio.to_thread.run_sync(
            aoi_check, order, settings, model.contract.inputs.resolution, limiter=aoi_turns
        )
        sync = area <= settings.sync_max_km2
        # the search too answers now (no imagery 404, too many items 413), not as a failed job (review);
        # not while every job slot is taken (429 first: it costs no request to the STAC API)
        await _still_connected(request)  # a client gone while its AOI was checked gets no search, no job
        registry.check_free()
        readers = await anyio.to_thread.run_sync(open_order, order, model, settings, limiter=aoi_turns)
        handed: dict[str, Any] = {}  # the sync answer's full outcome or error, never kept by the registry

        def work(job: Job) -> JobSummary:
            destination = join_url(settings.output_url, job.id) if settings.output_url else None
            try:
                outcome = run_order(
                    order,
                    model,
                    settings,
                    work_dir=settings.output_dir / job.id,
                    destination=destination,
                    public_folder=public_folder(job.id),
                    progress=job,
                    readers=readers,
                )
            except Exception as exc:
                if sync:
                    handed["error"] = exc  # raised with its traceback: the error handler logs it
                else:
                    _log_failed_job(job, exc)
                raise
            if sync:
                handed["outcome"] = outcome
            return JobSummary.of(outcome)

        submit = functools.partial(registry.submit, work, info={"area_km2": area, "model": body.model})
        await _still_connected(request)
        job = await anyio.to_thread.run_sync(submit)  # writes the job's record
        log.info("job %s: %.2f km² with model %s over %s", job.id, area, body.model, body.datetime)
        if not sync:
            accepted = status_of(request, job)
            return JSONResponse(
                accepted.model_dump(mode="json"), status_code=202, headers={"Location": accepted.href}
            )
        await _wait_for_client(job, request)
        if job.state in (JobState.FAILED, JobState.CANCELLED) and job.error is not None:
            # its id was never given out: kept, such failures would push other clients' jobs out (review)
            await anyio.to_thread.run_sync(registry.discard, job.id)
            raise handed.get("error", job.error)
        outcome: Outcome = handed["outcome"]
        return result_of(job, JobSummary.of(outcome), outcome.item)

    def checked_model(order: Order, model_id: str) -> ModelRunner:
        """The order's model, after the checks needing no AOI geometry (``check_before_aoi``)."""
        model = provider.get(model_id)
        check_before_aoi(order, settings, model.contract)
        return model

    @protected.get(
        "/jobs/{job_id}",
        name="get_job",
        tags=["classify"],
        summary="A classification job's status and, once done, its result",
        response_model=JobStatus,
        responses=_only(*auth, 404, 500),
    )
    def get_job(job_id: str, request: Request) -> JobStatus:
        """The job's state (`running`, `succeeded`, `failed`, `cancelled`), progress, result or error."""
        return status_of(request, registry.get(job_id))

    @protected.delete(
        "/jobs/{job_id}",
        tags=["classify"],
        summary="Cancel a running classification job",
        response_model=JobStatus,
        status_code=202,
        responses=_only(*auth, 404, 409, 500),
    )
    def cancel_job(job_id: str, request: Request) -> JobStatus:
        """Ask a running job to stop: it finishes the block in hand and stops, publishing nothing.

        202 with the job's status (still `running`); poll `GET /jobs/{id}`: it becomes `cancelled`, or, when
        its last block was already classified (it is writing or publishing its maps), `succeeded` or
        `failed` as it would have. 409 if the job has already finished. Its slot is free for another job once
        it has stopped.
        """
        job = registry.cancel(job_id)
        log.info("job %s: cancelled by a client", job.id)
        return status_of(request, job)

    @protected.get(
        "/models",
        tags=["models"],
        summary="The models this service runs",
        response_model=ModelList,
        responses=_only(*auth, 500),
    )
    def list_models() -> ModelList:
        """Every model in the models directory, with its bands, resolution, classes and metrics."""
        return ModelList(models=[_summary(info) for info in provider.list()])

    app.include_router(protected)

    @app.get(
        "/healthz", tags=["health"], summary="Liveness probe", response_model=Health, responses=_only(500)
    )
    async def healthz() -> Health:
        """200 while the process serves requests (no authentication)."""
        return Health(
            version=app.version, running_jobs=registry.running, max_concurrent_jobs=registry.max_concurrent
        )

    app.add_api_route(  # probes and load balancers send either method
        "/healthz",
        healthz,
        methods=["HEAD"],
        operation_id="healthz_head",
        tags=["health"],
        summary="Liveness probe (headers only)",
        response_model=Health,
        responses=_only(500),
    )

    _drop_unsent_422(app)
    return app


CLIENT_CHECK_SECONDS = 1.0
"""How often a synchronous request waiting for its job checks that its client is still connected."""


async def _still_connected(request: Request) -> None:
    """Go on only while the request's client waits for the answer.

    Raises:
        ClientDisconnect: the client went away (``RequestGuard`` logs it, answers nothing).
    """
    if await request.is_disconnected():
        raise ClientDisconnect


async def _wait_for_client(job: Job, request: Request) -> None:
    """Wait for a synchronous request's job; cancel it when the client goes away (timeout, closed tab).

    An abandoned request otherwise kept its job running to the end, holding a job slot for an answer no one
    would read: clients retrying after their own timeout filled every slot.
    """
    while not await anyio.to_thread.run_sync(job.wait, CLIENT_CHECK_SECONDS):
        if await request.is_disconnected():
            job.cancel()
            log.info("job %s: its client went away: cancelling it", job.id)
            await anyio.to_thread.run_sync(job.wait)
            return


def _log_failed_job(job: Job, error: Exception) -> None:
    """Log a job's failure as ``_error_response`` logs a request's (5xx only; a traceback for a bug)."""
    status = status_for(error)
    if status >= 500:
        detail = error_body(error)["detail"]
        log.error("job %s failed: %s", job.id, detail, exc_info=error if status == 500 else None)


def _drop_unsent_422(app: FastAPI) -> None:
    """Drop the 422 FastAPI documents for every route with parameters where none can fail (no body)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in generate()["paths"].values():
                for operation in item.values():
                    if "requestBody" not in operation:
                        operation["responses"].pop("422", None)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lulc-stac")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"


def _summary(info: ModelInfo) -> ModelSummary:
    return ModelSummary(**info.__dict__)


__all__ = ["ClassifyBody", "ClassifyResult", "JobStatus", "ModelList", "create_app"]
