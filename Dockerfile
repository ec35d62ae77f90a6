# The operator image: `python -m azure_edition_operator` as an unprivileged user, read-only root.
#
# `make image` builds it with podman (or docker): hack/image/build.sh. The base is a build argument:
#   * with a registry: the default below, pinned by tag AND by the digest of its multi-arch index;
#   * with none (this project's CI machines): a Debian base made from Debian's packages by
#     debootstrap (hack/image/base.sh), passed as --build-arg BASE_IMAGE=localhost/azure-edition-base:…
# Both have python3 3.11 and a venv module. Python dependencies come only from requirements/*.lock,
# installed with --require-hashes (hack/image/lock.py writes them from the pyproject pins).
# The image carries the operator distribution only: the simulator, the control-plane launcher and
# the bench are azure-edition-devtools (operator/pyproject.toml) and are not copied in.
ARG BASE_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---- build: a hash-locked virtualenv with the operator's wheel, nothing else ------------------
FROM ${BASE_IMAGE} AS build

# pip verifies TLS against this bundle; hack/image/build.sh mounts the host's over it (proxies).
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY requirements/build.lock requirements/image.lock ./requirements/
# /opt/build holds the build tools (setuptools, wheel, pip); /opt/venv gets no pip at all: pip runs
# from /opt/build against it (--python). Wheels only, every file checked against its sha256.
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements/build.lock \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --no-deps --only-binary=:all: -r requirements/image.lock

COPY pyproject.toml README.md ./
COPY operator/azure_edition_operator/ ./operator/azure_edition_operator/
# The project's own wheel (no dependencies: they are all in image.lock), then a consistency check.
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps --no-index /wheels/azure_edition_operator-*-py3-none-any.whl \
 && /opt/build/bin/pip --python /opt/venv/bin/python check \
 && /opt/venv/bin/python -c "import azure_edition_operator.__main__"

# ---- runtime: the same base, the virtualenv, an unprivileged user -----------------------------
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="azure-edition-operator" \
      org.opencontainers.image.description="Kubernetes operator for Windows Server Azure Edition VMs (Hotpatch, SMB over QUIC, Extended Network)" \
      org.opencontainers.image.licenses="Apache-2.0"

# A named user with a fixed UID/GID matching deploy/base (runAsUser 10001). The UID must exist in
# /etc/passwd: without POD_ID, kopf names itself in peering after the user (getpass). Not named
# "operator": Debian's base already has a group of that name (gid 37).
RUN groupadd --system --gid 10001 azure-edition \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin azure-edition

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090

ENTRYPOINT ["python", "-m", "azure_edition_operator"]
