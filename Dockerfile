# The pipeline image: every Kubeflow/Vertex component of the recommender pipeline runs in it, and so do Beam's
# SDK workers on Dataflow (--sdk_container_image) and on Flink/Spark (DOCKER environment).
#
# It holds the LOCKED dependencies (uv.lock, no dev group, with the scann extra) and this package installed
# non-editable into /opt/venv, so the dotted user-code paths in the compiled spec import:
#   transform.preprocessing.preprocessing_fn, trainer.*.run.run_fn, components.*_Executor
# and the curated schema is at /opt/venv/lib/python3.10/site-packages/schema/schema.pbtxt
# (kubeflow_runner.IMAGE_VENV must stay equal to UV_PROJECT_ENVIRONMENT below).
#
#   docker build -t <registry>/woonkly/pipeline:<tag> .
#
# Kubeflow runs `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...` as the
# container command (set in the spec), which bypasses the ENTRYPOINT; the ENTRYPOINT is Beam's worker boot
# for when the image serves as a Beam SDK harness.

ARG PYTHON_IMAGE=python:3.10-slim-bookworm
# Must equal the apache-beam version in uv.lock (tests/kubeflow_spec_test.py checks it).
ARG BEAM_VERSION=2.60.0

# Beam's SDK worker boot program, for Dataflow / Flink / Spark workers.
FROM apache/beam_python3.10_sdk:${BEAM_VERSION} AS beam_sdk

# ---- build: resolve nothing, install exactly what uv.lock says ----
FROM ${PYTHON_IMAGE} AS build
# A C compiler for the few sdist-only locked packages with extensions (crcmod).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.10 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first (a layer that changes only with the lock), then the package itself.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra scann --no-install-project
# The source (.dockerignore leaves out environments, outputs and data); pyproject's packages.find decides
# which packages get installed.
COPY . ./
RUN uv sync --frozen --no-dev --extra scann --no-editable
# pip inside the venv (Python's bundled copy, no download): Beam's worker boot runs `python -m pip` to install
# anything staged with a job. uv sync is exact, so this comes after it.
RUN /opt/venv/bin/python -m ensurepip --default-pip

# ---- runtime ----
FROM ${PYTHON_IMAGE}
COPY --from=beam_sdk /opt/apache/beam /opt/apache/beam
COPY --from=build /opt/venv /opt/venv
# The source tree too: the runners and `ingestion` are not in the installed package, so compiling or running
# from inside the image works as `python /src/kubeflow_runner.py ...`. Components never import from here.
COPY --from=build /src /src
# TF_USE_LEGACY_KERAS: TFRS and Transform's Keras layers need Keras 2 (tf_keras); TensorFlow reads it at import.
# RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT: Beam's boot (>= 2.44) would otherwise run the SDK worker in a fresh
# venv built from the base interpreter, which does not see /opt/venv's packages.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    TF_USE_LEGACY_KERAS=1 \
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 \
    PYTHONUNBUFFERED=1
# An empty working directory: user code imports from the installed package, not from a source tree.
WORKDIR /workspace
ENTRYPOINT ["/opt/apache/beam/boot"]
