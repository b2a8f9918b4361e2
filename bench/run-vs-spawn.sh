#!/usr/bin/env bash
# Whole-command timing, side by side in one run: `whim --local run -- true` (API,
# WebSocket, exec bootstrap) against the emulator's direct spawn of a sandbox running
# `true` (no API, no WebSocket). Goal: run <= 1.3x spawn + 30 ms.
# Uses hyperfine (apt-get install hyperfine) on the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p whim >/dev/null
WHIM=$PWD/target/release/whim
export WHIM_STATE_DIR=$(mktemp -d)
"$WHIM" --local run -- true   # start the background emulator once
hyperfine -N --warmup 3 --runs "${RUNS:-30}" \
  "$WHIM --local run -- true" \
  "$WHIM emulator spawn -- true"
"$WHIM" emulator stop
