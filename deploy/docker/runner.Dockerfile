# syntax=docker/dockerfile:1
# The Runner image for remote targets (CPU): installs the platform and runs `mlops execute` on a plan.
# Build from the repository root:  docker build -f deploy/docker/runner.Dockerfile -t mlops-nocode-runner:0.1.0 .
# A target starts it as `mlops execute PLAN --report-to URL` with MLOPS_RUN_TOKEN in its environment.

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
    MLOPS_HOME=/var/lib/mlops
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --create-home --uid 10001 mlops \
    && mkdir -p /var/lib/mlops && chown mlops /var/lib/mlops
USER 10001
WORKDIR /var/lib/mlops
# a batch job: it ends when the plan ends; liveness is what the Runner reports to the gateway
HEALTHCHECK NONE
COPY --chmod=0755 deploy/docker/runner-entrypoint.sh /usr/local/bin/mlops-runner
ENTRYPOINT ["/usr/local/bin/mlops-runner"]
