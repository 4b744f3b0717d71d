# syntax=docker/dockerfile:1.7
# The compose stack's one-shot loader: puts the demo world's collection and items into pgstac with
# pypgstac (pinned to the pgstac database version in infra/compose.yaml). Only the loading script inside.
# Build from the repository root:
#   docker build -f infra/docker/loader.Dockerfile -t lulc-loader .

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="lulc-loader" \
      org.opencontainers.image.description="Loads a static STAC catalog into pgstac"
RUN pip install --no-cache-dir "pypgstac[psycopg]==0.9.8" \
    && groupadd --system --gid 10001 lulc \
    && useradd --system --uid 10001 --gid lulc --no-create-home --shell /usr/sbin/nologin lulc
COPY infra/scripts/load_demo.py /app/load_demo.py
ENV PYTHONUNBUFFERED=1
USER 10001:10001
HEALTHCHECK NONE
ENTRYPOINT ["python", "/app/load_demo.py"]
