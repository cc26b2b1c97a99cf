#!/usr/bin/env bash
# Finds or builds a Go tool the tests need and prints its path on the last line of stdout.
# Usage: go-tool-install.sh <binary> <module path of the main package> <version>
#   e.g. go-tool-install.sh jaeger github.com/jaegertracing/jaeger/cmd/jaeger v1.75.0
# Order: $<BINARY>_PATH (upper case), the cached build, a fresh `go install` into the cache
# (outside the repository, so every clone on this machine reuses it). Idempotent; safe to run concurrently.
set -euo pipefail

NAME="$1" MODULE="$2" VERSION="$3"
VAR="$(echo "$NAME" | tr '[:lower:]-' '[:upper:]_')_PATH"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/task-scheduler/${NAME}-${VERSION}"
CACHED="$CACHE_DIR/$NAME"

log() { echo "go-tool-install($NAME): $*" >&2; }

if [[ -n "${!VAR:-}" ]]; then
  if [[ -x "${!VAR}" ]]; then log "using $VAR"; echo "${!VAR}"; exit 0; fi
  log "$VAR=${!VAR} is not an executable file"; exit 1
fi
if [[ -x "$CACHED" ]]; then log "using cached build"; echo "$CACHED"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  log "not built yet and Go is not installed to build it: install Go 1.24+ (it builds with go get -tool), or set $VAR to a $NAME binary"; exit 1
fi
log "building ${MODULE}@${VERSION} with $(go version | cut -d' ' -f3) into $CACHE_DIR (once per machine)"
mkdir -p "$CACHE_DIR"
TMP_BIN="$(mktemp -d "$CACHE_DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT
# In a throwaway module (go get -tool), not `go install m@v`: a tool whose go.mod has `replace` directives
# (Jaeger's has) cannot be built by `go install` at all.
(cd "$TMP_BIN" && go mod init go-tool-build >/dev/null 2>&1 && go get -tool "${MODULE}@${VERSION}" && go build -o "$TMP_BIN/$NAME" "$MODULE")
mv -f "$TMP_BIN/$NAME" "$CACHED" # atomic within one filesystem
log "built"
echo "$CACHED"
