# syntax=docker/dockerfile:1
#
# tickwire: one image, one binary, every subcommand (`run`, `ingest`,
# `gateway`, `sub`, `probe`, ...). Build and try it:
#
#   docker build -t tickwire .
#   docker run --rm -p 8080:8080 tickwire          # the demo market on :8080
#
# docker-compose.yml runs the deployment shape (Redis, ingest, gateways,
# Prometheus, Grafana) from this same image.

# ---------------------------------------------------------------- builder
# Needs BuildKit (the default builder of current Docker) for the cache
# mounts: the crates.io registry and target/ survive between builds, so a
# source change recompiles only the workspace crates, not every dependency.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src

# Manifests first, then sources: the layers above the build step change
# only with the files they hold. Everything the release build reads is
# here: the workspace, the crates, the benches member (part of the
# workspace), and the files the binary embeds (feeds/ captures and
# definitions, dashboards/web/ for the ticker board).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY benches benches
COPY feeds feeds
COPY dashboards/web dashboards/web

RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p tickwire \
    && install -D -m 0755 target/release/tickwire /out/tickwire

# Only the feed definitions go to the runtime image (the captures are
# embedded in the binary): feeds/<venue>/feed.toml and feeds/demo.toml.
RUN for f in feeds/*/feed.toml feeds/demo.toml; do \
        install -D -m 0644 "$f" "/out/$f"; \
    done

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime

# ca-certificates: the live venue feeds are wss:// (TLS).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid, so volume permissions and Kubernetes'
# runAsNonRoot can rely on it.
RUN groupadd --system --gid 10001 tickwire \
    && useradd --system --uid 10001 --gid tickwire --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tickwire

COPY --from=builder /out/tickwire /usr/local/bin/tickwire
# Relative `--feeds feeds/<venue>/feed.toml` paths resolve from here.
WORKDIR /opt/tickwire
COPY --from=builder /out/feeds ./feeds

USER 10001:10001

# 8080: `run` and `gateway` (WebSocket, HTTP, /metrics);
# 9090: `ingest --listen 0.0.0.0:9090` (/healthz, /readyz, /metrics).
EXPOSE 8080 9090

# SIGTERM starts tickwire's graceful stop; give it time
# (docker stop --time, compose stop_grace_period).
STOPSIGNAL SIGTERM

ENTRYPOINT ["tickwire"]
# The demo: every venue's capture replayed over the in-memory bus, served on
# all interfaces (inside a container 127.0.0.1 is unreachable from outside).
CMD ["run", "--listen", "0.0.0.0:8080"]
