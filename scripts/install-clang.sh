#!/usr/bin/env sh
# Install clang-14, the compiler of the local chain's SBF program (the twin of zmart_core)
# (src/marketd/chain/localnet/program; rebuilt by `python -m marketd.chain.localnet.build`).
# Idempotent: does nothing when clang-14 is already on PATH.
set -eu

if command -v clang-14 >/dev/null 2>&1; then
    echo "clang-14 already installed: $(command -v clang-14)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends clang-14
clang-14 --version
