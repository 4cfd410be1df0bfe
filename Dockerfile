# The HWC3D server: one instance per container (README "Deployment").
#   docker build --build-arg BUILD_VERSION=$(git describe --always) -t hwc3d .
#   docker run --env-file .env -p 8000:8000 hwc3d
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # fewer glibc arenas: the threads of one process share freed memory instead of keeping it
    MALLOC_ARENA_MAX=2

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY server.py worker.py composition.py ./
COPY config ./config
COPY documents ./documents
COPY handlers ./handlers
COPY jobs ./jobs
COPY providers ./providers
COPY realtime ./realtime
COPY storage ./storage
COPY fixtures ./fixtures
COPY docs ./docs

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin hwc3d \
    && mkdir -p /var/lib/hwc3d && chown hwc3d:hwc3d /var/lib/hwc3d

ARG BUILD_VERSION=dev
ENV BUILD_VERSION=${BUILD_VERSION} \
    ENV=production \
    DATA_DIR=/var/lib/hwc3d

USER hwc3d
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["python", "server.py", "--host", "0.0.0.0", "--port", "8000"]
