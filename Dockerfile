# The operator image: `python -m azure_edition_operator` as an unprivileged user.
#
# No image has been built from this file in this repository's CI (its machines have no container
# engine); hadolint checks it (tests/deploy/test_dockerfile.py). Build and push it yourself:
#   docker build -t <registry>/azure-edition-operator:0.1.0 .
# then point deploy/ at it (docs/install.md#image).

# ---- build: install the runtime package (no test extra) into a virtualenv ----------------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ ./operator/

# Dependencies are pinned (==) in pyproject.toml; `.` is this project, without its test extra.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/python -c "import azure_edition_operator.__main__"

# ---- runtime: the same Python, the virtualenv, nothing else ---------------------------------
FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="azure-edition-operator" \
      org.opencontainers.image.description="Kubernetes operator for Windows Server Azure Edition VMs (Hotpatch, SMB over QUIC, Extended Network)" \
      org.opencontainers.image.licenses="Apache-2.0"

# A named user with a fixed UID/GID matching deploy/base (runAsUser 10001). The UID must exist in
# /etc/passwd: without POD_ID, kopf names itself in peering after the user (getpass).
RUN groupadd --system --gid 10001 operator \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin operator

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090

ENTRYPOINT ["python", "-m", "azure_edition_operator"]
