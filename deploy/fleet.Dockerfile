# The edgeml fleet service: `edgeml fleet serve` and the other `edgeml fleet …` commands, with PostgreSQL support.
#   docker build -f deploy/fleet.Dockerfile -t edgeml-fleet:0.1.0 .        (from the repository root)
# The compose file (deploy/docker-compose.yaml) and the Kubernetes manifests (deploy/kubernetes/) run it; the
# commands they give it are tested outside a container by tests/deploy/ (see docs/deploy.md).
FROM python:3.11-slim AS build
WORKDIR /src
# NOTE: edgeml/fleet, edgeml/device_agent, edgeml/targets, edgeml/calibration are symlinks to the top-level
# folders: copy both sides, the wheel build follows the links.
COPY pyproject.toml README.md ./
COPY edgeml edgeml
COPY fleet fleet
COPY device_agent device_agent
COPY targets targets
COPY calibration calibration
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN set -eu; whl="$(ls /wheels/edgeml-*.whl)"; \
    pip install --no-cache-dir "${whl}[fleet,postgres]"; rm -rf /wheels; \
    useradd --system --uid 10001 --user-group --home-dir /var/lib/edgeml edgeml; \
    mkdir -p /var/lib/edgeml/artifacts /var/lib/edgeml/broker; chown -R edgeml:edgeml /var/lib/edgeml
USER 10001
WORKDIR /var/lib/edgeml
# Where the fleet keeps artifacts unless --store says otherwise; mount a volume shared by every instance here.
ENV EDGEML_FLEET_STORE=/var/lib/edgeml/artifacts \
    PYTHONUNBUFFERED=1
# `fleet serve` stops cleanly on SIGTERM (the lease is released, the broker session closed).
ENTRYPOINT ["edgeml"]
CMD ["fleet", "serve", "--help"]
