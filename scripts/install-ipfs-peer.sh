#!/usr/bin/env bash
# Install the offline IPFS peer used by marketd's IPFS tests (js-ipfs 0.66.1, Kubo RPC API)
# and the mock IPFS Pinning Service into scripts/ipfs-peer/node_modules.
# Idempotent: when node_modules matches package-lock.json it returns at once; a real install
# takes about 3 minutes. Needs Node.js >= 18 and npm (installed from Debian if absent).
set -euo pipefail

peer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ipfs-peer"
stamp="$peer_dir/node_modules/.marketd-install-stamp"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-ipfs-peer: installing nodejs and npm from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

want="$(cat "$peer_dir/package.json" "$peer_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" \
      && -x "$peer_dir/node_modules/.bin/jsipfs" \
      && -x "$peer_dir/node_modules/.bin/mock-ipfs-pinning-service" ]]; then
    echo "install-ipfs-peer: already installed"
    exit 0
fi

# `npm install`, not `npm ci`: the lock lists an optional dependency of electron-fetch that
# points at a GitHub tarball (unreachable here); install skips it, `npm ci` refuses the lock.
echo "install-ipfs-peer: npm install in $peer_dir (about 3 minutes)"
cd "$peer_dir"
npm install --no-audit --no-fund --loglevel=error
cat package.json package-lock.json | sha256sum | cut -d' ' -f1 > "$stamp"
echo "install-ipfs-peer: done"
