# The edgeml device agent (ONNX Runtime), for devices that run containers and for rehearsals beside the fleet.
#   docker build -f deploy/agent.Dockerfile -t edgeml-agent:0.1.0 .        (from the repository root)
# Configure it with EDGEML_AGENT_* variables (docs/agent.md) or a mounted agent.toml (EDGEML_AGENT_CONFIG);
# keep /var/lib/edgeml on a volume: model slots, the update lifecycle's state and the telemetry spool live there.
FROM python:3.11-slim AS build
WORKDIR /src
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
    pip install --no-cache-dir "${whl}[agent,runtime-ort]"; rm -rf /wheels; \
    useradd --system --uid 10001 --user-group --home-dir /var/lib/edgeml edgeml; \
    mkdir -p /var/lib/edgeml; chown -R edgeml:edgeml /var/lib/edgeml
USER 10001
WORKDIR /var/lib/edgeml
ENV EDGEML_AGENT_STATE_DIR=/var/lib/edgeml \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/edgeml"]
# `edgeml-agent run` stops on SIGTERM; an update in progress resumes from its persisted state on the next start.
ENTRYPOINT ["edgeml-agent"]
CMD ["run"]
