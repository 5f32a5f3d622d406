# One image for the operator and the engine. The operator runs `ferry operator`; the Jobs it
# creates run `ferry job` from the same image.
#
# The install steps are the ones CI runs: wheels built against constraints.txt, the same pins the
# test environment installs with (`hack/setup.sh`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md constraints.txt ./
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mlflow-ferry" \
      org.opencontainers.image.description="Kubernetes operator and engine that move MLflow data" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mlflow-ferry/mlflow-ferry"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels "mlflow-ferry==${VERSION}" && rm -rf /wheels
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["ferry"]
CMD ["operator"]
