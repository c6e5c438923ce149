# Multi-stage: build a wheel with its dependencies, then a slim runtime that runs as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY rules ./rules
COPY fhir_mappings ./fhir_mappings
COPY cards ./cards
COPY cds_service ./cds_service
# Every extra that docker-compose.yml and deploy/kubernetes configure: postgres (VCDS_DATABASE_URL) and
# redis (VCDS_REDIS_URL, the replay cache the workers share). tests/deploy/test_container_start.py builds
# a venv with this very command and starts the compose service in it.
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ".[postgres,redis]"

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VCDS_PROFILE=production VCDS_HOST=0.0.0.0 VCDS_PORT=8080 \
    VCDS_DATABASE_URL=sqlite:////var/lib/vertebral-cds/vertebral-cds.sqlite3
RUN useradd --system --uid 10001 --home-dir /var/lib/vertebral-cds --create-home vcds
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER vcds
WORKDIR /var/lib/vertebral-cds
# SQLite, the patient-hash key and the metrics live here: mount a volume (docs/operations.md), or the
# thresholds, audit and feedback go with the container.
VOLUME /var/lib/vertebral-cds
EXPOSE 8080
# The port the service was told to use (VCDS_PORT), not a fixed one.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os,sys,urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('VCDS_PORT', '8080'), timeout=2).status != 200)"
# The container is the production boundary: set VCDS_PROFILE=production and its required settings.
CMD ["vertebral-cds", "serve"]
