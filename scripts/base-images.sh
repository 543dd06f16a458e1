#!/usr/bin/env bash
# Makes the Dockerfile's base images available to the local Docker engine:
# pulled when a registry answers; otherwise built here as stand-ins, so the
# image can be built offline or where no container registry is reachable.
#
#   scripts/base-images.sh            # debian:bookworm-slim (the runtime stage)
#   scripts/base-images.sh --rust     # and rust:1.95-bookworm (the build stage)
#
# The stand-ins:
#   debian:bookworm-slim   debootstrap --variant=minbase of Debian 12 from the
#                          Debian archive (the mirror apt on this machine uses)
#   rust:1.95-bookworm     that, plus the build tools of the official image
#                          (gcc, libc6-dev, make, pkg-config, git), this
#                          machine's own Rust 1.95 toolchain under
#                          /usr/local/{rustup,cargo}, and this machine's CA
#                          certificates, so cargo in the build reaches the
#                          crate registry exactly as the host does.
# Each says so when it is built. Needs root, a running Docker engine, and
# debootstrap (installed from Debian when missing).
set -euo pipefail

rust=false
[[ ${1:-} == --rust ]] && rust=true
DOCKER=${DOCKER:-docker}

say() { printf '[base-images] %s\n' "$*"; }

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

pull() { timeout 120 "$DOCKER" pull -q "$1" >/dev/null 2>&1; }

mirror() {
  # The Debian mirror apt already uses here (deb822 or one-line sources).
  local uri
  uri=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

rootfs_dir() { mktemp -d "${TMPDIR:-/tmp}/authz-base.XXXXXX"; }

bootstrap() { # DIR
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  local mirror_url
  mirror_url=$(mirror)
  say "debootstrap --variant=minbase bookworm from $mirror_url (about a minute)"
  debootstrap --variant=minbase bookworm "$1" "$mirror_url" >"$1.log" 2>&1 || {
    tail -n 20 "$1.log" >&2
    return 1
  }
  # What the official image has: the main archive, updates and security.
  local security=${mirror_url%/debian*}/debian-security
  cat >"$1/etc/apt/sources.list" <<EOF
deb $mirror_url bookworm main
deb $mirror_url bookworm-updates main
deb $security bookworm-security main
EOF
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*
}

import() { # DIR TAG CHANGES...
  local dir=$1 tag=$2
  shift 2
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar -C "$dir" --numeric-owner -c . | "$DOCKER" import "${changes[@]}" - "$tag" >/dev/null
}

slim() {
  local tag=debian:bookworm-slim
  if have "$tag"; then say "$tag: present"; return; fi
  if pull "$tag"; then say "$tag: pulled"; return; fi
  say "$tag: no registry answered; building a local stand-in with debootstrap"
  local dir
  dir=$(rootfs_dir)
  bootstrap "$dir/root"
  import "$dir/root" "$tag" 'CMD ["bash"]' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  rm -rf "$dir"
  say "$tag: stand-in built (Debian 12 minbase)"
}

rust_image() {
  local tag=rust:1.95-bookworm
  if have "$tag"; then say "$tag: present"; return; fi
  if pull "$tag"; then say "$tag: pulled"; return; fi
  say "$tag: no registry answered; building a local stand-in from debian:bookworm-slim and this machine's Rust toolchain"
  local toolchain
  toolchain=$(rustc --print sysroot)
  [[ $(rustc --version) == "rustc 1.95."* ]] || {
    say "this machine's rustc is $(rustc --version), not 1.95: cannot stand in for $tag" >&2
    return 1
  }
  local dir
  dir=$(rootfs_dir)
  local cid
  cid=$("$DOCKER" create debian:bookworm-slim)
  mkdir -p "$dir/root"
  "$DOCKER" export "$cid" | tar -C "$dir/root" -x
  "$DOCKER" rm "$cid" >/dev/null
  # The official image's build tools (buildpack-deps), from Debian.
  cp /etc/resolv.conf "$dir/root/etc/resolv.conf"
  chroot "$dir/root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates gcc libc6-dev make pkg-config git curl >/dev/null && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb'
  : >"$dir/root/etc/resolv.conf"
  # This machine's CA certificates: the crate registry is reached as here.
  cp -a /etc/ssl/certs/ca-certificates.crt "$dir/root/etc/ssl/certs/ca-certificates.crt"
  # The toolchain (rustc, cargo, the x86_64 standard library), without docs
  # and sources, where the official image keeps it.
  local dest="$dir/root/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu"
  mkdir -p "$dest" "$dir/root/usr/local/cargo/bin"
  tar -C "$toolchain" --exclude=share/doc --exclude=lib/rustlib/src --exclude='lib/rustlib/*/analysis' -c . | tar -C "$dest" -x
  for bin in "$dest"/bin/*; do
    ln -s "../../rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin/$(basename "$bin")" \
      "$dir/root/usr/local/cargo/bin/$(basename "$bin")"
  done
  import "$dir/root" "$tag" \
    'ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_VERSION=1.95.0' \
    'CMD ["bash"]'
  rm -rf "$dir"
  say "$tag: stand-in built (Debian 12 + build tools + this machine's rustc $(rustc --version | cut -d' ' -f2))"
}

slim
if $rust; then rust_image; fi
