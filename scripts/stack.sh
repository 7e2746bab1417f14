#!/usr/bin/env bash
# stack.sh runs `wikiflow stack "$@"` (infra, up, down, status, logs, clean, prereqs; see
# `go run ./cmd/wikiflow stack --help`); the tasks call the built binary directly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." && exec go run ./cmd/wikiflow stack "$@"
