# syntax=docker/dockerfile:1
# The workspace's three binaries (authz-proxy, todo-backend, dev-idp) in one
# small image; docker-compose.yml runs one per service. Multi-stage: the Rust
# toolchain stays in the build stage, the runtime is Debian slim + curl (for
# the health checks), running as an unprivileged user.

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

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# /data is where the named volumes mount (SQLite file, dev-idp keys); a new
# named volume takes this owner from the image.
RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin app \
 && mkdir -p /data /etc/authz-proxy /etc/dev-idp \
 && chown app:app /data
COPY --from=build /out/ /usr/local/bin/
COPY policy.yaml /etc/authz-proxy/policy.yaml
COPY dev-idp/dev-idp.yaml /etc/dev-idp/dev-idp.yaml
ENV POLICY_FILE=/etc/authz-proxy/policy.yaml \
    TODO_DB=/data/todo.db \
    DEV_IDP_CONFIG=/etc/dev-idp/dev-idp.yaml \
    DEV_IDP_DATA_DIR=/data/dev-idp
USER app
WORKDIR /data
EXPOSE 8000 8081 9400
CMD ["authz-proxy"]
