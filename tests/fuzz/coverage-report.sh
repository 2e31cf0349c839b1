#!/usr/bin/env bash
# coverage-report.sh BUILD_DIR [--html]
# After the fuzz targets ran (ctest -L fuzz in the fuzz build), turns each run's coverage
# profile (BUILD_DIR/fuzz-work/NAME/fuzz.profraw) into a report of the project's own code
# that the run reached: BUILD_DIR/fuzz-coverage/NAME.txt per target (per file), and
# BUILD_DIR/fuzz-coverage/summary.txt (one line per target), which is also printed.
# With --html, an HTML report per target as well. Fails if a target left no profile.
set -euo pipefail
build=$1 html=${2:-}
out=$build/fuzz-coverage
rm -rf "$out"
mkdir -p "$out"
# Code that is not ours (system headers, the fuzz drivers, test helpers) is left out.
ignore='(^/usr/|/tests/)'
summary=$out/summary.txt
printf '%-16s %10s %10s %10s   %s\n' target lines regions functions '(covered, of the code each target links)' >"$summary"
missing=0
for work in "$build"/fuzz-work/*/; do
  name=$(basename "$work")
  binary=$build/bin/$name
  profile=$work/fuzz.profraw
  if [ ! -s "$profile" ] || [ ! -x "$binary" ]; then
    echo "coverage-report: $name left no profile ($profile)" >&2
    missing=1
    continue
  fi
  llvm-profdata-14 merge -sparse "$profile" -o "$work/fuzz.profdata"
  llvm-cov-14 report "$binary" -instr-profile="$work/fuzz.profdata" \
    -ignore-filename-regex="$ignore" >"$out/$name.txt"
  # The TOTAL line: regions, missed, cover%, functions, missed, cover%, lines, missed, cover%.
  read -r -a total < <(grep '^TOTAL' "$out/$name.txt")
  printf '%-16s %10s %10s %10s\n' "$name" "${total[9]}" "${total[3]}" "${total[6]}" >>"$summary"
  if [ "$html" = --html ]; then
    llvm-cov-14 show "$binary" -instr-profile="$work/fuzz.profdata" -format=html \
      -ignore-filename-regex="$ignore" -output-dir="$out/$name"
  fi
done
cat "$summary"
echo "per-file reports: $out/"
exit "$missing"
