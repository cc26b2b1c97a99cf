#!/usr/bin/env bash
# Finds or builds the Temporal CLI and prints its path on the last line of stdout.
# Order: $TEMPORAL_CLI_PATH, `temporal` on PATH, the cached build, a fresh build
# with Go into the cache (outside the repository, so every clone on this machine
# reuses it). Idempotent.
set -euo pipefail

VERSION="v1.5.1" # later tags carry a `replace` directive that breaks `go install`
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/task-scheduler/temporal-cli-${VERSION}"
CACHED="$CACHE_DIR/temporal"

log() { echo "temporal:install: $*" >&2; }

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  if [[ -x "$TEMPORAL_CLI_PATH" ]]; then log "using TEMPORAL_CLI_PATH"; echo "$TEMPORAL_CLI_PATH"; exit 0; fi
  log "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file"; exit 1
fi
if command -v temporal >/dev/null 2>&1; then
  log "using temporal on PATH"; command -v temporal; exit 0
fi
if [[ -x "$CACHED" ]]; then
  log "using cached build"; echo "$CACHED"; exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
temporal:install: the Temporal CLI was not found and Go is not installed to build it.
Install one of:
  - the Temporal CLI (https://docs.temporal.io/cli#install), then put it on PATH or set TEMPORAL_CLI_PATH
  - Go 1.22+ (https://go.dev/dl/), then run: npm run temporal:install
MSG
  exit 1
fi
log "building temporal ${VERSION} with $(go version | cut -d' ' -f3) into $CACHE_DIR (takes a few minutes, once per machine)"
mkdir -p "$CACHE_DIR"
TMP_BIN="$(mktemp -d "$CACHE_DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT
# Build outside the repository so a go.mod nearby cannot interfere.
(cd "$TMP_BIN" && GOBIN="$TMP_BIN" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@${VERSION}")
mv -f "$TMP_BIN/temporal" "$CACHED" # atomic within one filesystem: a concurrent run sees all or nothing
log "built"
echo "$CACHED"
