#!/usr/bin/env bash
# Builds FerretDB v1 (MongoDB wire protocol, SQLite backend) into .local/bin/ferretdb.
#
# Why not `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: the Go module proxy
# answers 403 on the module's version list, which `go install pkg@version` reads for its
# deprecation check, and FerretDB panics at start unless build/version/version.txt (generated
# by FerretDB's own release tooling, absent from the module zip) names the version. So we fetch
# the exact module version, write version.txt, and build the command from its own module.
set -euo pipefail
VERSION="${FERRETDB_VERSION:-v1.24.2}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="$root/.local/bin/ferretdb"
# Output is captured before matching: `cmd | grep -q` or `cmd | head` under pipefail fails
# with SIGPIPE (exit 141) whenever the reader stops before the writer has finished.
installed_version() { [[ -x "$bin" ]] && "$bin" --version 2>/dev/null || true; }
if [[ "$(installed_version)" == *"version: ${VERSION}"* ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build FerretDB" >&2; exit 1; }
dir="$(go mod download -json "github.com/FerretDB/FerretDB@${VERSION}" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir" ]] || { echo "go mod download of FerretDB ${VERSION} failed" >&2; exit 1; }
src="$root/.local/src/ferretdb-${VERSION}"
rm -rf "$src" && mkdir -p "$src" && cp -R "$dir/." "$src/" && chmod -R u+w "$src"
echo "${VERSION}" > "$src/build/version/version.txt"
echo "local" > "$src/build/version/package.txt"
mkdir -p "$root/.local/bin"
(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -o "$bin" ./cmd/ferretdb)
out="$(installed_version)"
[[ "$out" == *"version: ${VERSION}"* ]] || { echo "built FerretDB does not report ${VERSION}" >&2; exit 1; }
echo "    ${out%%$'\n'*}"
