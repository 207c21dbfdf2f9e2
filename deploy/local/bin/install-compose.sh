#!/usr/bin/env bash
# Builds the Docker Compose v2 CLI plugin from the Go module proxy into
# ~/.docker/cli-plugins/docker-compose, so `docker compose -f deploy/compose.yaml config` can
# validate the production compose file on machines that have the docker client but no
# compose plugin (and no Docker engine). Built inside its own module because its go.mod has
# exclude directives, which `go install pkg@version` refuses.
set -euo pipefail
VERSION="${COMPOSE_VERSION:-v2.40.3}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
plugin="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
# Captured, not piped into `grep -q`: under pipefail an early-exiting reader is a SIGPIPE failure.
installed="$(docker compose version 2>/dev/null || true)"
if [[ "$installed" == *"${VERSION#v}"* ]]; then
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build docker compose" >&2; exit 1; }
dir="$(go mod download -json "github.com/docker/compose/v2@${VERSION}" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$dir" ]] || { echo "go mod download of docker compose ${VERSION} failed" >&2; exit 1; }
src="$root/.local/src/compose-${VERSION}"
rm -rf "$src" && mkdir -p "$src" && cp -R "$dir/." "$src/" && chmod -R u+w "$src"
mkdir -p "$(dirname "$plugin")"
(cd "$src" && GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${VERSION}" \
  -o "$plugin" ./cmd)
docker compose version
