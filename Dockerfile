# The dashboard alone; compose.yaml runs it beside registry:2.
FROM python:3.13-slim

# PROMETHEUS_MULTIPROC_DIR: where each process keeps its counters for /metrics (registry/counters.py); compose.yaml
# mounts a tmpfs there that all its services share.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DATA_DIR=/data PROMETHEUS_MULTIPROC_DIR=/data/metrics
WORKDIR /app

RUN useradd --system --uid 10001 --no-create-home dashboard \
    && mkdir /data && chown dashboard /data

COPY requirements.txt .
# Django's translation sources (.po) are for translators; the server reads the compiled .mo beside them.
RUN pip install --no-cache-dir -r requirements.txt \
    && find /usr/local/lib/python3.13/site-packages -name '*.po' -delete

# The product's packages, templates, static files and translations: .dockerignore lists them (devtools/, the run
# command's demo registry, stays out). One layer.
COPY . .
# Swagger UI is served for the API's documentation page; ReDoc is not; pages name only the hashed copies of the
# files (STATIC_HASHED_ONLY). Importing the settings
# as root makes the metrics folder: it goes back to the user the server runs as.
RUN SECRET_KEY=collectstatic-only STATIC_HASHED_ONLY=true python manage.py collectstatic --noinput --verbosity 0 \
        --ignore 'redoc*' \
    && chown -R dashboard /data

USER dashboard
VOLUME /data
EXPOSE 8000
# Docker calls a container healthy only at a check: one every 5 s (a python start, ~30 ms of CPU) says so within 5 s
# of the first answer, and compose starts the services that wait for it that much sooner.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s \
    CMD python -c "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health/', timeout=4).status != 200)"

# WEB_CONCURRENCY processes (default 2) of WEB_THREADS threads (default 4) on PORT (default 8000): see
# registry_ui/gunicorn_conf.py. Counter files this container's processes left at an earlier start are removed first
# (files are named by host name and pid; other containers' files are theirs).
CMD ["sh", "-c", "rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*_\"$(hostname | tr _ -)\"-*.db; python manage.py check --deploy --fail-level ERROR && python manage.py migrate --noinput && exec gunicorn -c python:registry_ui.gunicorn_conf registry_ui.wsgi"]
