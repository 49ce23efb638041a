# syntax=docker/dockerfile:1
#
# Order status worker image.
#   docker build -t order-status-worker .
#   docker run --rm -e ORDER_STATUS_BOOTSTRAP_SERVERS=... -e REDIS_URL=... order-status-worker
#
# Dependencies come only from the hash-pinned requirements.lock (base dependencies, generated
# with `uv pip compile --generate-hashes`); the project itself is then installed without
# resolving anything, so the image contains exactly what the lock file says.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependency layer first, so source edits do not reinstall every dependency. `pip check` after
# the project install fails the build if the lock file misses a (transitive) dependency.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY worker ./worker
COPY schemas ./schemas
RUN pip install --no-deps . \
    && pip check

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="order-status-worker" \
      org.opencontainers.image.description="Kafka consumer that keeps order status snapshots in Redis" \
      org.opencontainers.image.licenses="Apache-2.0"

# Fixed numeric ids, so Kubernetes `runAsNonRoot` can verify the user without a passwd lookup.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

# In a container the HTTP server (/metrics, /health/*) must listen beyond loopback for probes
# and Prometheus to reach it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORDER_STATUS_LOG_FORMAT=json \
    ORDER_STATUS_HTTP_HOST=0.0.0.0 \
    ORDER_STATUS_HTTP_PORT=8080
EXPOSE 8080

WORKDIR /tmp
USER 10001:10001

# The worker handles SIGTERM itself (finishes the in-flight batch, commits, exits); the exec form
# makes it PID 1 so it receives the signal directly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["order-status"]
CMD ["run"]
