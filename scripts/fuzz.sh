#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target of the module for a short, bounded time each:
# packages are found by their `func FuzzXxx(f *testing.F)` declarations, the targets
# by `go test -list`, and each target runs alone with -fuzztime FUZZTIME (default
# 200000x: a count of executions, about 10 s each here). A count, not a duration: with
# a duration, Go 1.26's fuzz coordinator can report "context deadline exceeded" at the
# deadline on a busy machine without any failing input (go.dev/issue/75804, fixed in
# Go 1.27). New failing inputs are written to the package's testdata/fuzz as usual.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZTIME=${FUZZTIME:-200000x}

mapfile -t pkgs < <(
	grep -rlE --include='*_test.go' '^func Fuzz[A-Z0-9_][A-Za-z0-9_]*\(' . 2>/dev/null |
		grep -vE '^\./(tools|\.wikiflow|vendor)/|/testdata/' |
		xargs -r -n1 dirname | sort -u
)
if ((${#pkgs[@]} == 0)); then
	echo "fuzz: no fuzz targets"
	exit 0
fi

count=0
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz')
	for target in "${targets[@]}"; do
		echo "fuzz: $pkg $target for $FUZZTIME"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
		count=$((count + 1))
	done
done
echo "fuzz: $count targets fuzzed for $FUZZTIME each, no failure"
