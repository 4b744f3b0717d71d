# syntax=docker/dockerfile:1.7
# The classifier service: `lulc serve` (the HTTP API) by default, `lulc classify ...` for one AOI per run.
# Dependencies: the locked `service` extra only (onnxruntime, no scikit-learn).
# Build from the repository root (the context must hold pyproject.toml and uv.lock):
#   docker build -f infra/docker/service.Dockerfile -t lulc-service .
# BuildKit reads service.Dockerfile.dockerignore next to this file, so only the sources reach the context.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first: this layer is reused while only our code changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra service --no-install-project
# Then the project itself, installed (not editable) into the same environment.
COPY lulc/ lulc/
COPY service/ service/
RUN uv sync --frozen --no-dev --extra service --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="lulc-service" \
      org.opencontainers.image.description="lulc-stac classifier service: ONNX inference to categorical COGs" \
      org.opencontainers.image.source="https://github.com/lulc-stac/lulc-stac"
# Shared libraries the wheels need that python:3.11-slim-bookworm lacks (tests/infra/test_image_envs.py):
#   libexpat1: rasterio's bundled GDAL needs libexpat.so.1, dropped from slim (docker-library/python#984)
# Not pinned (DL3008): bookworm's point and security releases replace the versions on the mirror.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libexpat1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lulc \
    && useradd --system --uid 10001 --gid lulc --home-dir /work --no-create-home --shell /usr/sbin/nologin lulc \
    && install -d -o lulc -g lulc /work
COPY --from=builder /app/.venv /app/.venv
# MALLOC_ARENA_MAX=2: fewer glibc malloc arenas for the worker threads. Measured once each, 2026-12-01, a 25 Mpx
# run in one process with a 100-tree forest: peak RSS 446 -> 420 MiB with the AOA and sets, 411 -> 393
# without (the peak while the COGs were written at the end was gone), the same time. `lulc` commands cap
# the arenas themselves (lulc/allocator.py); the variable covers every other entry point of the image.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    LULC_SERVICE_HOST=0.0.0.0 \
    LULC_SERVICE_PORT=8000
WORKDIR /work
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["lulc"]
CMD ["serve"]
