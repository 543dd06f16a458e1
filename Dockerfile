# The workspace's three binaries (authz-proxy, todo-backend, dev-idp) in one
# small image; docker-compose.yml runs one per service and says which port
# each listens on (an image shared by three services has no one port to
# EXPOSE). Multi-stage: the Rust toolchain stays in the build stage, the
# runtime is Debian slim + curl (for the health checks), running as an
# unprivileged user.
#
# Build with BuildKit (the cache mounts below need it): Docker 23+ uses it by
# default; on Docker 20.10 set DOCKER_BUILDKIT=1. No `# syntax=` line on
# purpose: the engine's built-in frontend is used, so the build needs no
# image from a registry beyond the two base images.
#
# BINARIES=prebuilt (a build argument) takes the binaries from
# target/image-bin/ instead of compiling them here; scripts/compose-test.sh
# uses it in CI, where the same commit's binaries are already built.
ARG BINARIES=build

FROM rust:1.95-bookworm AS build
WORKDIR /src
# No debug line tables in the image's binaries (the repository keeps them
# for profiling).
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p authz-proxy -p todo-backend -p dev-idp \
 && mkdir -p /out \
 && cp target/release/authz-proxy target/release/todo-backend target/release/dev-idp /out/

FROM scratch AS prebuilt
COPY target/image-bin/authz-proxy target/image-bin/todo-backend target/image-bin/dev-idp /out/

FROM ${BINARIES} AS binaries

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# /data is where the named volumes mount (SQLite file, dev-idp keys); a new
# named volume takes this owner from the image. User and group share one id.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin app \
 && mkdir -p /data /etc/authz-proxy /etc/dev-idp \
 && chown app:app /data
COPY --from=binaries /out/ /usr/local/bin/
COPY policy.yaml /etc/authz-proxy/policy.yaml
COPY dev-idp/dev-idp.yaml /etc/dev-idp/dev-idp.yaml
ENV POLICY_FILE=/etc/authz-proxy/policy.yaml \
    TODO_DB=/data/todo.db \
    DEV_IDP_CONFIG=/etc/dev-idp/dev-idp.yaml \
    DEV_IDP_DATA_DIR=/data/dev-idp
USER app
WORKDIR /data
CMD ["authz-proxy"]
