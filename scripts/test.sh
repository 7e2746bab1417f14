#!/usr/bin/env bash
# test.sh runs every test of the module (go test -v ./...) against the brokers that
# `task infra` started, shows each package and each top-level test with its outcome
# (so integration tests are seen to run, not skip), keeps the whole output in
# .wikiflow/run/test.log, fuzzes each fuzz target briefly (scripts/fuzz.sh), and ends
# with one line: "N passed, N failed, N skipped".
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
mkdir -p .wikiflow/run
log=.wikiflow/run/test.log

go test -count=1 -timeout 25m -v ./... 2>&1 | tee "$log" | grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|\?)'
rc=${PIPESTATUS[0]}

fuzz_rc=0
if [[ $rc == 0 ]]; then
	bash scripts/fuzz.sh || fuzz_rc=$?
fi

passed=$(grep -cE '^--- PASS' "$log")
failed=$(grep -cE '^--- FAIL' "$log")
skipped=$(grep -cE '^--- SKIP' "$log")
if [[ $skipped != 0 ]]; then
	echo
	echo "skipped tests and why:"
	grep -A1 -E '^--- SKIP' "$log" | grep -vE '^(--- SKIP|--)$' | sed 's/^ */  /'
fi
if [[ $rc != 0 && $failed == 0 ]]; then
	failed=1 # a package failed to build or panicked outside a test
fi
if [[ $fuzz_rc != 0 ]]; then
	failed=$((failed + 1))
fi
echo
echo "$passed passed, $failed failed, $skipped skipped"
[[ $rc == 0 && $fuzz_rc == 0 ]]
