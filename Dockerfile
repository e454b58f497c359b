# syntax=docker/dockerfile:1
# The hotpatch-audit worker image: the checkout in /app, the packages uv.lock pins in /app/.venv (uv sync
# --frozen, the same lock as .venv and CI), the system libraries WeasyPrint and the report fonts need, a
# non-root user, and a Prefect worker as the default command. See docs/install.md.
#
#     docker build -t hotpatch-audit:0.1.0 .
#     docker run --rm -e PREFECT_API_URL=http://<server>:4200/api hotpatch-audit:0.1.0      # a process worker
#     docker run --rm -v hotpatch-audit-data:/var/lib/hotpatch-audit hotpatch-audit:0.1.0 hotpatch-audit demo --months 1
#
# The same image runs each flow run of deploy/prefect.docker.yaml (a `docker` work pool).

FROM python:3.12-slim-bookworm

# uv at the version scripts/bootstrap.sh pins.
ARG UV_VERSION=0.13.9

# WeasyPrint: Pango >= 1.44 with HarfBuzz (subset) for the PDF; DejaVu and Noto CJK for the English and Japanese
# reports (as scripts/bootstrap.sh and README.md list them; poppler-utils is for the tests only). git: the
# git_clone pull step of deploy/prefect.git.yaml when this image is its worker.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-noto-cjk \
        git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "uv==${UV_VERSION}"

# A non-root user owns the virtual environment (so the git_clone deployment can install its clone into it) and
# the data folder (ledger, reports, scratch); the code stays root's.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin audit \
    && install -d -o audit -g audit /app /app/.venv /var/lib/hotpatch-audit

WORKDIR /app
ENV UV_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

# The locked dependencies first (a layer that changes only with uv.lock), then the checkout and the project.
USER audit
COPY --chown=root:root pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY --chown=root:root . .
RUN uv sync --frozen --no-dev

ENV VIRTUAL_ENV=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    MPLBACKEND=Agg \
    HOTPATCH_AUDIT_LEDGER_PATH=/var/lib/hotpatch-audit/ledger.duckdb \
    HOTPATCH_AUDIT_OUT_DIR=/var/lib/hotpatch-audit/reports \
    HOTPATCH_AUDIT_WORK_DIR=/var/lib/hotpatch-audit/work \
    PREFECT_HOME=/home/audit/.prefect \
    DO_NOT_TRACK=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_LOGGING_EXTRA_LOGGERS=hotpatch_audit

VOLUME ["/var/lib/hotpatch-audit"]
CMD ["prefect", "worker", "start", "--pool", "hotpatch-audit"]
