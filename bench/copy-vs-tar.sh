#!/usr/bin/env bash
# Whole-command timing, side by side in one run: `whim put` + `whim get` of a 256 MiB tree
# through the local emulator against a local `tar czf - | tar xzf -` of the same tree
# (goal: whim's throughput at least 0.5x tar's, i.e. time ratio <= 2), then the peak RSS
# of a 1 GiB put and a 1 GiB get (goal: at most 64 MiB each). Needs hyperfine and GNU time
# (apt-get install hyperfine time) and runs the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p whim >/dev/null
WHIM=$PWD/target/release/whim
export WHIM_STATE_DIR=$(mktemp -d)
work=$(mktemp -d)
trap '"$WHIM" emulator stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# A tree of 256 MiB: half incompressible, half text-like, in files of 1 KiB to 64 MiB.
mkdir -p "$work/src/tree/text" "$work/src/tree/bin" "$work/dst" "$work/back"
head -c $((128 << 20)) /dev/urandom >"$work/src/tree/bin/big"
for i in $(seq 1 64); do seq $((i * 1000000)) $((i * 1000000 + 300000)) | head -c $((2 << 20)) >"$work/src/tree/text/f$i" || true; done
du -sh "$work/src/tree"

id=$("$WHIM" --local launch -q --ttl 2h)
"$WHIM" --local exec "$id" -- mkdir -p /tmp/in
copy="sh -c '$WHIM --local put $id $work/src/tree /tmp/in --max-bytes 2G 2>/dev/null && rm -rf $work/back/tree && $WHIM --local get $id /tmp/in/tree $work/back --max-bytes 2G 2>/dev/null && $WHIM --local exec $id -- rm -rf /tmp/in/tree'"
local_tar="sh -c 'rm -rf $work/dst/* && tar czf - -C $work/src tree | tar xzf - -C $work/dst'"
hyperfine --warmup 1 --runs "${RUNS:-5}" "$copy" "$local_tar"
diff -r "$work/src/tree" "$work/back/tree" && echo "round trip identical"

# Peak RSS of a 1 GiB put and get (the VM side is the emulator's; this is whim's own).
[ -z "${SKIP_RSS:-}" ] || exit 0
rm -rf "$work/src" "$work/dst" "$work/back"/*
mkdir -p "$work/src"
head -c $((1 << 30)) /dev/urandom >"$work/src/gig"
/usr/bin/time -f 'put 1 GiB: peak RSS %M KiB, %e s' "$WHIM" --local put "$id" "$work/src/gig" /tmp --max-bytes 2G
/usr/bin/time -f 'get 1 GiB: peak RSS %M KiB, %e s' "$WHIM" --local get "$id" /tmp/gig "$work/back" --max-bytes 2G
cmp "$work/src/gig" "$work/back/gig" && echo "1 GiB round trip identical"
"$WHIM" --local terminate "$id"
