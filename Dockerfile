# wxauth: multi-stage build, slim base, non-root, no secrets baked in (settings come from the environment).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Install the exact, hash-checked dependencies from the lock into a virtual environment (a layer
# that is rebuilt only when the lock changes), then the project itself without resolving anything
# again; the application itself runs from /app.
COPY requirements/runtime.lock ./requirements/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml ./
COPY wxconfig.py ./
COPY server ./server
COPY handlers ./handlers
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y wxauth

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    WX_HOST=0.0.0.0 \
    WX_PORT=8000 \
    WX_DATA_DIR=/data
RUN groupadd --system wxauth \
 && useradd --system --gid wxauth --home-dir /app --no-create-home --shell /usr/sbin/nologin wxauth \
 && mkdir -p /data && chown wxauth:wxauth /data && chmod 700 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code is owned by root and read-only for the service user (least privilege).
COPY wxconfig.py ./
COPY server ./server
COPY handlers ./handlers
COPY templates ./templates
COPY locale ./locale
COPY static ./static
USER wxauth
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WX_PORT', '8000'), timeout=2)"
# SIGTERM (docker stop) lets requests in flight finish, then exits 0.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "server"]
