#!/usr/bin/env bash
# Installs every Debian package the build, the tests and scripts/services.sh need. Idempotent and
# quiet: apt-get runs (update once, then install) only when something is missing.
set -euo pipefail

PACKAGES=(
    build-essential cmake ninja-build pkg-config
    librdkafka-dev libevent-dev libjansson-dev libpq-dev libinih-dev uthash-dev libsystemd-dev
    libssl-dev zlib1g-dev
    libcriterion-dev libyaml-dev
    postgresql-15 postgresql-client-15
    clang-format tzdata procps jq curl
    clang libclang-rt-14-dev # the decoder's libFuzzer target (the runtime is only a Recommends)
)

installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
# A JRE and Maven from elsewhere (e.g. SDKMAN) are fine: install Debian's only when absent.
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)

((${#missing[@]} == 0)) && exit 0

sudo=()
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
        exit 1
    }
    sudo=(sudo)
fi

log=$(mktemp /tmp/solarx-deps.XXXXXX.log)
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -q &&
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1
then
    tail -n 40 "$log" >&2
    echo "deps: apt-get failed (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
