# syntax=docker/dockerfile:1
# The Runner image for remote GPU targets (CUDA runtime): the platform on NVIDIA's CUDA runtime image,
# running `mlops execute` on a plan. Steps bring their own GPU libraries (torch...) in their environment.
# Build from the repository root:
#   docker build -f deploy/docker/runner-cuda.Dockerfile -t mlops-nocode-runner:0.1.0-cuda .

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY catalogue ./catalogue
RUN pip install --no-cache-dir "build==1.2.2" && python -m build --wheel --outdir /wheels .

FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MLOPS_HOME=/var/lib/mlops \
    PATH=/opt/mlops/bin:$PATH
# Python 3.12, Ubuntu 24.04's own (the platform needs >= 3.11)
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/mlops \
    && /opt/mlops/bin/pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --uid 10001 mlops \
    && mkdir -p /var/lib/mlops && chown mlops /var/lib/mlops
USER 10001
WORKDIR /var/lib/mlops
# a batch job: it ends when the plan ends; liveness is what the Runner reports to the gateway
HEALTHCHECK NONE
COPY --chmod=0755 deploy/docker/runner-entrypoint.sh /usr/local/bin/mlops-runner
ENTRYPOINT ["/usr/local/bin/mlops-runner"]
