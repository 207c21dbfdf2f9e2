#!/usr/bin/env bash
# Installs everything the native local stack and the tests need, on a fresh machine of the
# project's kind (Debian, Python 3.11, Java 17 + Maven, Go). Idempotent and cached: a second
# run checks and returns in seconds.
#
#   uv + the Python workspace   → .local/tools/bin/uv, .venv/  (uv.lock, frozen)
#   Apache Kafka jars (Maven)   → .local/kafka/libs/           (deploy/local/kafka/pom.xml)
#   FerretDB v1 (Go)            → .local/bin/ferretdb          (deploy/local/bin/install-ferretdb.sh)
#   Redis (Debian package)      → redis-server on PATH
#   Prometheus (Debian package) → prometheus, promtool on PATH
#   Chromium (Debian package)   → /usr/bin/chromium, driven by Playwright in browser tests
#   Leaflet (npm ci)            → services/issues/node_modules/ (portal map, served locally)
#   Console assets (npm ci)     → services/publisher/web/node_modules (KERN UX, htmx)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
UV_VERSION="0.13.8"
step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }

need python3 "Python 3.11+"
need java "Java 17 runs Kafka"
need mvn "Maven fetches the Kafka jars from Maven Central"
need go "Go builds FerretDB"

step "uv ${UV_VERSION}"
uv="$root/.local/tools/bin/uv"
uv_version() { [[ -x "$uv" ]] && "$uv" --version 2>/dev/null || true; }
if [[ "$(uv_version)" != "uv ${UV_VERSION}"* ]]; then
  python3 -m venv "$root/.local/tools"
  "$root/.local/tools/bin/pip" install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi

step "Python workspace (uv sync --frozen)"
"$uv" sync --frozen --quiet

step "Apache Kafka jars"
libs="$root/.local/kafka/libs"
pom_hash="$(sha256sum deploy/local/kafka/pom.xml | cut -d' ' -f1)"
if [[ "$(cat "$libs/.complete" 2>/dev/null)" != "$pom_hash" ]]; then
  rm -rf "$libs"
  mvn -B -q -f deploy/local/kafka/pom.xml dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
  echo "$pom_hash" > "$libs/.complete"
fi
kafka_jar=("$libs"/kafka_2.13-*.jar)
echo "    ${kafka_jar[0]##*/}"

step "FerretDB"
deploy/local/bin/install-ferretdb.sh

apt_updated=""
apt_install() {
  local sudo=""
  [[ "$(id -u)" == "0" ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "$apt_updated" ]]; then $sudo apt-get update -qq; apt_updated=1; fi
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "Redis"
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
redis_version="$(redis-server --version)"
echo "    ${redis_version%% sha=*}"

step "Prometheus and promtool (Debian package; alert rules are checked with promtool)"
command -v promtool >/dev/null 2>&1 || apt_install prometheus
prometheus_version="$(prometheus --version 2>&1 || true)"
echo "    ${prometheus_version%%$'\n'*}"

step "Chromium (browser tests; Playwright's own browser download is not reachable)"
[[ -x /usr/bin/chromium ]] || apt_install chromium
chromium_version="$(/usr/bin/chromium --version 2>/dev/null || true)"
echo "    ${chromium_version}"

step "Issue portal browser assets (npm ci: Leaflet, served by the issues service, no CDN)"
need npm "npm installs the portal's Leaflet from services/issues/package-lock.json"
portal="$root/services/issues"
lock_hash="$(sha256sum "$portal/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$portal/node_modules/.sirene-lock" 2>/dev/null)" != "$lock_hash" ]]; then
  (cd "$portal" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > "$portal/node_modules/.sirene-lock"
fi
leaflet_version="$(node -p "require('$portal/node_modules/leaflet/package.json').version")"
echo "    leaflet ${leaflet_version}"

step "Staff console assets (npm ci: KERN UX, htmx; served by the publisher, never from a CDN)"
console_web="$root/services/publisher/web"
need npm "Node.js + npm install the console's front-end packages"
lock_hash="$(sha256sum "$console_web/package-lock.json" | cut -d' ' -f1)"
if [[ "$(cat "$console_web/node_modules/.sirene-lock" 2>/dev/null)" != "$lock_hash" ]]; then
  (cd "$console_web" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > "$console_web/node_modules/.sirene-lock"
fi
echo "    $(cd "$console_web" && node -p "'@kern-ux/native ' + require('@kern-ux/native/package.json').version + ', htmx.org ' + require('htmx.org/package.json').version")"
