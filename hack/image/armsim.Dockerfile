# The ARM simulator as an image, for the simulator-demo overlay and `make e2e-node` (never for
# production: it answers as Azure with a demo principal). Same base and hash-locked dependencies as
# the operator image plus requirements/armsim.lock; carries azure-edition-devtools and the operator
# (the simulator reuses its models). hack/image/build.sh --armsim builds it from a minimal context.
ARG BASE_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${BASE_IMAGE} AS build
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/ ./requirements/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements/build.lock \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --no-deps --only-binary=:all: \
      -r requirements/image.lock -r requirements/armsim.lock
COPY . .
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . ./operator \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps --no-index /wheels/azure_edition_operator-*-py3-none-any.whl /wheels/azure_edition_devtools-*-py3-none-any.whl \
 && /opt/build/bin/pip --python /opt/venv/bin/python check

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="azure-edition-armsim" \
      org.opencontainers.image.description="ARM simulator for azure-edition-operator demos and tests"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 8443
ENTRYPOINT ["python", "-m", "azure_edition_simulator"]
