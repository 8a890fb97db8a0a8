#!/usr/bin/env bash
# The container image's build stage, without Docker (no engine on these machines): copies what
# docker/Dockerfile's build stage COPYs (minus docker/Dockerfile.dockerignore's exclusions) into a
# scratch /src, then runs its RUN commands there with /build moved into the scratch directory.
# Fails when the stage forgets a file the build needs, or names a target that does not exist.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$repo/docker/Dockerfile
scratch=$(mktemp -d "${SOLARX_TEST_TMPDIR:-/tmp}/solarx-docker-build-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"

# The build stage: from "FROM ... AS build" to the next FROM, continuation lines joined.
stage=$(awk '/^FROM .* AS build$/ { on = 1; next } /^FROM / { on = 0 } on' "$dockerfile" |
    sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
excluded=$(grep -v '^#' "$repo/docker/Dockerfile.dockerignore" | grep -v '^$' | grep -v '\*' | tr '\n' ' ')
[[ -n $stage ]] || { echo "FAIL: no build stage in $dockerfile" >&2; exit 1; }

while read -r word rest; do
    case $word in
    COPY)
        read -ra args <<<"$rest"
        dest=${args[-1]}
        for src in "${args[@]:0:${#args[@]}-1}"; do
            src=${src%/}
            for x in $excluded; do
                [[ $src == "$x" ]] && { echo "FAIL: the build stage copies $src, which the .dockerignore excludes" >&2; exit 1; }
            done
            [[ -e $repo/$src ]] || { echo "FAIL: the build stage copies $src, which does not exist" >&2; exit 1; }
            target=$scratch/src/${dest#./}
            mkdir -p "$(dirname "$target")"
            if [[ -d $repo/$src ]]; then
                mkdir -p "$target"
                (cd "$repo/$src" && tar --exclude='build*' --exclude='*.o' -cf - .) | (cd "$target" && tar -xf -)
            elif [[ $dest == */ || $dest == ./ ]]; then
                mkdir -p "$target"
                cp "$repo/$src" "$target/"
            else
                cp "$repo/$src" "$target"
            fi
        done
        ;;
    RUN)
        [[ $rest == apt-get* ]] && continue # the packages are this machine's already
        cmd=${rest//\/build/$scratch/build}
        (cd "$scratch/src" && bash -c "$cmd") >"$scratch/run.log" 2>&1 || {
            tail -n 30 "$scratch/run.log" >&2
            echo "FAIL: the build stage's RUN failed: $cmd" >&2
            exit 1
        }
        ;;
    esac
done <<<"$stage"
for bin in solarx-stream solarx-sim; do
    [[ -x $scratch/build/$bin ]] || { echo "FAIL: the build stage did not build $bin" >&2; exit 1; }
done
echo "PASS docker_build_stage: copied $(find "$scratch/src" -type f | wc -l) files, built solarx-stream and solarx-sim"
