# syntax=docker/dockerfile:1.7
# The tiler: `lulc tiler` (TiTiler factories, legend, statistics, web map) on port 8080.
# Dependencies: the locked `tiler` extra only (neither scikit-learn nor onnxruntime).
# Build from the repository root (the context must hold pyproject.toml and uv.lock):
#   docker build -f infra/docker/tiler.Dockerfile -t lulc-tiler .
# BuildKit reads tiler.Dockerfile.dockerignore next to this file, so only the sources reach the context.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# The web map's JavaScript library from npm (package-lock.json), as `make web` does; no CDN at run time.
FROM node:22.12.0-bookworm-slim AS web
WORKDIR /web
COPY tiler/web/package.json tiler/web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

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
RUN uv sync --frozen --no-dev --extra tiler --no-install-project
# Then the project itself with the map library in its static folder, installed (not editable).
COPY lulc/ lulc/
COPY tiler/ tiler/
COPY --from=web /web/node_modules/leaflet/dist/ tiler/static/vendor/leaflet/
COPY --from=web /web/node_modules/leaflet/LICENSE tiler/static/vendor/leaflet/LICENSE
RUN uv sync --frozen --no-dev --extra tiler --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="lulc-tiler" \
      org.opencontainers.image.description="lulc-stac tiler: class-coloured tiles, legend, web map" \
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
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LULC_TILER_HOST=0.0.0.0 \
    LULC_TILER_PORT=8080
WORKDIR /work
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["lulc"]
CMD ["tiler"]
