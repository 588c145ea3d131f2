# syntax=docker/dockerfile:1
#
# Runnel's one bundled image: /usr/local/bin/runnel-broker and
# /usr/local/bin/runnel-operator, running as uid/gid 65532 (non-root).
#
#   docker build -t ghcr.io/runnel-dev/runnel:0.1.0 .
#   docker run --rm -p 9092:9092 ghcr.io/runnel-dev/runnel:0.1.0     # a one-node broker
#   docker run --rm ghcr.io/runnel-dev/runnel:0.1.0 runnel-operator --help
#
# Kubernetes never uses the default CMD: the operator's Deployment (Helm chart)
# and the broker StatefulSet the operator creates both set `command`.
#
# Stages:
#   chef     rust toolchain + cargo-chef
#   planner  reduces the workspace to a "recipe" (manifests + Cargo.lock only)
#   builder  builds the dependencies from the recipe (a layer that stays cached
#            until Cargo.toml/Cargo.lock change), then the workspace itself
#   runtime  distroless: glibc + libgcc, no shell, no package manager
#
# Only plain Dockerfile features are used (no RUN --mount, no COPY --chmod), so
# the classic builder works too; BuildKit builds the stages in parallel.

# Debian 12 in both: the binaries link glibc dynamically, so the builder's
# glibc must not be newer than the runtime's. Pin digests in CI if you need
# reproducible images (e.g. rust:1-bookworm@sha256:...).
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

######################################################################## chef
FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && rm -rf "${CARGO_HOME:-/usr/local/cargo}/registry"
WORKDIR /src

##################################################################### planner
FROM chef AS planner
# .dockerignore keeps target/, .git and test caches out of the context.
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

##################################################################### builder
FROM chef AS builder
# The image ships release binaries without DWARF debug info: the workspace
# profile keeps `debug = 1` for local profiling, which would add tens of MB per
# binary here. Symbols stay, so panics still name functions. Set before the
# dependency build so both builds use the same profile and share artifacts.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_TERM_COLOR=never
# Dependencies only. The recipe changes only when a manifest or Cargo.lock
# does, so source edits reuse this layer. `-p` limits it to what the two
# shipped binaries need (dev-dependencies such as rdkafka are not built).
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        -p runnel-broker -p runnel-operator
# The workspace itself.
COPY . .
RUN cargo build --release --locked -p runnel-broker -p runnel-operator \
    && mkdir -p /out/bin /out/etc/runnel /out/var/lib/runnel/data \
    && cp target/release/runnel-broker target/release/runnel-operator /out/bin/ \
    # Fail the image build if either binary needs a shared library the
    # distroless/cc runtime lacks (it has glibc, libm, libgcc_s only).
    && ! ldd /out/bin/* | grep -Ev '^/out/bin/|linux-vdso|ld-linux|lib(c|m|gcc_s|pthread|dl|rt)\.so' | grep . \
    # Default broker config for `docker run`: the repo's single-node
    # config/server.properties, listening on all interfaces and keeping its
    # data under /var/lib/runnel/data. Mounting a ConfigMap at /etc/runnel
    # (as the operator does) replaces it.
    && sed -e 's#^listeners=.*#listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093#' \
           -e 's#^log\.dirs=.*#log.dirs=/var/lib/runnel/data/kafka-log#' \
           config/server.properties > /out/etc/runnel/server.properties \
    && grep -q '^listeners=PLAINTEXT://0.0.0.0:9092,' /out/etc/runnel/server.properties \
    && grep -q '^log\.dirs=/var/lib/runnel/data/kafka-log$' /out/etc/runnel/server.properties

##################################################################### runtime
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="runnel" \
      org.opencontainers.image.description="Runnel: a Kafka-compatible broker (runnel-broker) and its Kubernetes operator (runnel-operator)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/bin/runnel-broker /out/bin/runnel-operator /usr/local/bin/
COPY --from=builder /out/etc/runnel/server.properties /etc/runnel/server.properties
# The broker's data directory, writable by the runtime user. In Kubernetes a
# PersistentVolumeClaim is mounted here (pod fsGroup 65532 makes it writable).
# No VOLUME instruction: it would create anonymous volumes under `docker run`
# and Kubernetes ignores it anyway.
COPY --from=builder --chown=65532:65532 /out/var/lib/runnel /var/lib/runnel

# Numeric uid:gid (the image's "nonroot" user), so that Kubernetes'
# runAsNonRoot check can verify it without resolving a user name.
USER 65532:65532
# With no config file the broker uses ./data: the same directory.
WORKDIR /var/lib/runnel

# 9092 Kafka (PLAINTEXT), 9093 KRaft controller, 8080 operator HTTP
# (/metrics, /healthz, /readyz).
EXPOSE 9092 9093 8080

# No ENTRYPOINT and no shell wrapper: the process is PID 1 and gets SIGTERM
# directly (both binaries shut down gracefully on it), and any command given
# to `docker run` or set by a pod spec replaces CMD as is. There is no
# HEALTHCHECK: the image has no shell or HTTP client, and Kubernetes uses its
# own probes (tcpSocket 9092 for brokers, httpGet /healthz and /readyz on 8080
# for the operator).
CMD ["/usr/local/bin/runnel-broker", "/etc/runnel/server.properties"]
