#!/usr/bin/env bash
# Start an offline js-ipfs peer on loopback for local development (the tests start their own).
# Environment: IPFS_PATH (default ./.ipfs-peer-repo), IPFS_API_PORT (5001),
# IPFS_GATEWAY_PORT (8080), IPFS_SWARM_PORT (4001), IPFS_RPC_PORT (5003).
# Run scripts/install-ipfs-peer.sh first. Stops with Ctrl-C.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jsipfs="$here/node_modules/.bin/jsipfs"
export IPFS_PATH="${IPFS_PATH:-$PWD/.ipfs-peer-repo}"
export NODE_OPTIONS="${NODE_OPTIONS:-} --require $here/promise-with-resolvers.cjs"

if [[ ! -f "$IPFS_PATH/config" ]]; then
    "$jsipfs" init --profile test >/dev/null
fi
"$jsipfs" config Addresses.API "/ip4/127.0.0.1/tcp/${IPFS_API_PORT:-5001}"
"$jsipfs" config Addresses.Gateway "/ip4/127.0.0.1/tcp/${IPFS_GATEWAY_PORT:-8080}"
"$jsipfs" config Addresses.RPC "/ip4/127.0.0.1/tcp/${IPFS_RPC_PORT:-5003}"
"$jsipfs" config --json Addresses.Swarm "[\"/ip4/127.0.0.1/tcp/${IPFS_SWARM_PORT:-4001}\"]"
exec "$jsipfs" daemon --offline --enable-preload=false
