# syntax=docker/dockerfile:1.7
#
# One image, three binaries: `ingest` (Kafka -> Redis workers), `api` (HTTP) and `loadgen`
# (one-shot load generator). The container command picks one; see docker-compose.yml.
#
#   docker build -t leaderboard .            (BuildKit is required: Docker >= 23 uses it by default)
#   docker run --rm leaderboard ingest --help
#
# Configuration is by LB_* environment variables only (docs/deployment.md lists them).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
# Build stage
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# rdkafka compiles its bundled librdkafka with librdkafka's own ./configure (a bash script) and
# make: it needs a C toolchain, zlib headers (the `libz` feature) and pkg-config to find them.
# perl and libssl-dev are not needed by today's feature set; they are here so that turning on
# rdkafka's `ssl` (system OpenSSL) or `ssl-vendored` feature, needed for TLS and SASL/SCRAM,
# builds without touching this file. python3 is harmless and some -sys build scripts use it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential \
        bash \
        perl \
        pkg-config \
        python3 \
        zlib1g-dev \
        libssl-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The whole workspace (every member's manifest must be present for cargo to load it); what is
# left out is in .dockerignore.
COPY . .

# Dependency caching without cargo-chef: the registry and the target directory live in BuildKit
# cache mounts that survive between builds, so a source change recompiles only the workspace
# crates, not the dependencies nor librdkafka. A cache mount is not part of the image, so
# the binaries are copied out of it in this same RUN. `sharing=locked` serialises concurrent
# builds on one builder instead of letting them corrupt target/. A new toolchain or a new
# Cargo.lock simply rebuilds what changed (cargo fingerprints include the rustc version).
RUN --mount=type=cache,id=leaderboard-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=leaderboard-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=leaderboard-target,target=/app/target,sharing=locked \
    set -eux; \
    cargo build --release --locked -p ingest -p api -p loadgen -p admin; \
    mkdir -p /out; \
    cp target/release/ingest target/release/api target/release/loadgen target/release/lb-admin /out/

# ---------------------------------------------------------------------------------------------
# Runtime stage
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: to verify brokers/Redis over TLS (it also pulls libssl3, which an
#   `ssl`-enabled rdkafka build links against). zlib1g, libgcc-s1 and libc6 are already in slim.
# tini: a minimal init as PID 1. It forwards SIGTERM to the binary (ingest drains its batch and
#   commits offsets on SIGTERM) and reaps zombies; a process that installs no SIGTERM handler
#   still stops at once instead of waiting for Docker's SIGKILL.
# No curl: the health checks use lb-http below, a few lines of bash over /dev/tcp. bash is an
#   Essential package, so it is in every Debian image; this keeps libcurl and its dependencies
#   (and their CVEs) out of the image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid (10001) so that volume ownership is predictable.
RUN groupadd --system --gid 10001 leaderboard \
    && useradd --system --uid 10001 --gid leaderboard --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin leaderboard \
    && mkdir -p /reports \
    && chown leaderboard:leaderboard /reports

COPY --from=builder /out/ingest /out/api /out/loadgen /out/lb-admin /usr/local/bin/

# lb-http PORT [PATH]: GET http://127.0.0.1:PORT/PATH (default /healthz) with bash's /dev/tcp,
# print the response body, exit 0 iff the status is 2xx. For the health checks, and by hand:
#   docker compose exec ingest lb-http 9101 /metrics
COPY --chmod=0755 <<'EOF' /usr/local/bin/lb-http
#!/bin/bash
set -u
port=${1:?usage: lb-http PORT [PATH]}
path=${2:-/healthz}
wait=${LB_HTTP_TIMEOUT:-3}
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
# HTTP/1.0: the server closes the connection after the response and sends no chunked body.
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nUser-Agent: lb-http\r\nConnection: close\r\n\r\n' "$path" "$port" >&3 || exit 1
if ! IFS=' ' read -r -t "$wait" _ status _ <&3; then
    echo "lb-http: no response from 127.0.0.1:${port}${path}" >&2
    exit 1
fi
status=${status%$'\r'}
while IFS= read -r -t "$wait" line <&3 && [[ -n ${line%$'\r'} ]]; do :; done
timeout "$wait" cat <&3
exec 3<&-
if [[ $status =~ ^2[0-9][0-9]$ ]]; then
    exit 0
fi
echo "lb-http: GET ${path} -> ${status}" >&2
exit 1
EOF

# Container defaults: JSON log lines on stdout, listen on all interfaces (the binaries' own
# defaults are 127.0.0.1, right for a laptop, unreachable in a container).
ENV RUST_LOG=info \
    LB_LOG_FORMAT=json \
    LB_API_ADDR=0.0.0.0:8080 \
    LB_INGEST_METRICS_ADDR=0.0.0.0:9101

USER 10001:10001
WORKDIR /tmp

# 8080: api (HTTP + /metrics). 9101: ingest (/metrics, /healthz).
EXPOSE 8080 9101

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["api"]
