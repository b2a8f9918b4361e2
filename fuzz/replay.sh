#!/usr/bin/env bash
# Builds the fuzz targets, replays every committed seed, then fuzzes each target briefly on a
# scratch copy of its seeds (the committed corpus never grows). CI runs it; about 3-4 minutes
# on 2 cores, most of it the first build.
#   FUZZ_SECONDS   seconds of fuzzing per target (default 20; 0 replays the seeds only)
#   FUZZ_TARGET_DIR  cargo target dir for the fuzz build (default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
target_dir=${FUZZ_TARGET_DIR:-fuzz/target}
targets=(tar_guard deframer shell_frames build_source)
start=$SECONDS

if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, ...); RUSTC_BOOTSTRAP lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
fuzz() {
  local sub=$1
  shift
  cargo fuzz "$sub" --target-dir "$target_dir" "$@"
}

echo "== building ${targets[*]}"
fuzz build

for t in "${targets[@]}"; do
  echo "== $t: replaying $(find "fuzz/corpus/$t" -type f | wc -l) seeds"
  fuzz run "$t" "fuzz/corpus/$t" -- -runs=0
done

if [ "$seconds" -gt 0 ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  for t in "${targets[@]}"; do
    echo "== $t: fuzzing for ${seconds}s"
    cp -r "fuzz/corpus/$t" "$scratch/$t"
    fuzz run "$t" "$scratch/$t" -- -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==|SUMMARY)" || true
    # grep hides libFuzzer's chatter; a crash still fails the run through the pipeline status.
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz target $t failed; see fuzz/artifacts/$t"; exit 1; }
  done
fi
echo "== fuzz: all targets built, seeds replayed, fuzzed ${seconds}s each, in $((SECONDS - start))s"
