# syntax=docker/dockerfile:1.7
# Training jobs: `lulc train --config recipe.yaml --out MODEL_DIR`, `lulc assess`, `lulc demo-data`.
# Dependencies: the locked `training` extra (scikit-learn, skl2onnx, onnxruntime for the parity check).
# Build from the repository root (the context must hold pyproject.toml and uv.lock):
#   docker build -f infra/docker/training.Dockerfile -t lulc-training .
# BuildKit reads training.Dockerfile.dockerignore next to this file, so only the sources reach the context.

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
RUN uv sync --frozen --no-dev --extra training --no-install-project
# Then the project itself, installed (not editable) into the same environment.
COPY lulc/ lulc/
COPY training/ training/
# The demo world generator: `lulc demo-data` feeds the compose stack's and the cron job's demo retraining.
COPY demo/ demo/
RUN uv sync --frozen --no-dev --extra training --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="lulc-training" \
      org.opencontainers.image.description="lulc-stac training: labelled points + STAC imagery to a verified ONNX model" \
      org.opencontainers.image.source="https://github.com/lulc-stac/lulc-stac"
# Shared libraries the wheels need that python:3.11-slim-bookworm lacks (tests/infra/test_image_envs.py):
#   libexpat1: rasterio's bundled GDAL needs libexpat.so.1, dropped from slim (docker-library/python#984)
#   libgomp1: LightGBM's lib_lightgbm.so needs libgomp.so.1 (OpenMP), not in the slim image
# Not pinned (DL3008): bookworm's point and security releases replace the versions on the mirror.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libexpat1 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lulc \
    && useradd --system --uid 10001 --gid lulc --home-dir /work --no-create-home --shell /usr/sbin/nologin lulc \
    && install -d -o lulc -g lulc /work
COPY --from=builder /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg
WORKDIR /work
USER 10001:10001
# A batch job, not a server: it runs to completion, so there is nothing to probe.
HEALTHCHECK NONE
ENTRYPOINT ["lulc"]
CMD ["--help"]
