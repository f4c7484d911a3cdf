# syntax=docker/dockerfile:1
# The gateway image: `mlops up` (API, UI, worker threads) on 0.0.0.0:8000.
# Build from the repository root:  docker build -f deploy/docker/gateway.Dockerfile -t mlops-nocode-gateway:0.1.0 .
# It needs SECRET_KEY (a random key of 32+ characters) and, for PostgreSQL, DATABASE_URL.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY catalogue ./catalogue
RUN pip install --no-cache-dir "build==1.2.2" && python -m build --wheel --outdir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MLOPS_HOME=/var/lib/mlops \
    HOST=0.0.0.0 \
    PORT=8000
# git: catalogues are Git repositories
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --uid 10001 mlops \
    && mkdir -p /var/lib/mlops && chown mlops /var/lib/mlops
USER 10001
WORKDIR /var/lib/mlops
VOLUME ["/var/lib/mlops"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["mlops", "up"]
