#!/usr/bin/env bash
# make fresh-check: CI as a new machine meets it. Takes away what the
# project's install step (install-deps.sh) added — the apt packages it
# installed, the qemu-s390x binfmt entry, the binfmt_misc mount, dpkg's
# s390x architecture — empties the image cache, clones the branch into a
# new folder with empty Go caches and runs .ci/run there with CI=true.
#   usage: fresh-check.sh [BRANCH (default main)]
# Env: CACHE (default /var/cache/dpm-netconf, the folder .ci/run uses: it
# is emptied), FRESH_DIR (default /var/tmp/dpm-netconf-fresh: clone, Go
# caches and ci.log; emptied first). Needs root. Prints the run's time last.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
branch=${1:-main}
state=${DPM_DEPS_STATE:-/var/lib/dpm-netconf-deps}
cache=$(realpath -m "${CACHE:-/var/cache/dpm-netconf}")
work=$(realpath -m "${FRESH_DIR:-/var/tmp/dpm-netconf-fresh}")
binfmt=/proc/sys/fs/binfmt_misc

# remove PATH...: unmount what is below PATH first, never leave PATH's
# filesystem (a killed image build can leave the host's /dev bound in a root).
remove() {
  local p m
  for p in "$@"; do
    [ -e "$p" ] || continue
    for m in $(awk -v p="$(realpath "$p")/" 'index($2 "/", p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
      umount -l "$m"
    done
    chmod -R u+w "$p" 2>/dev/null || true # the Go module cache is read-only
    rm -rf --one-file-system "$p"
  done
}

echo "fresh: taking away what the install step added ($state)"
if [ -e "$binfmt/qemu-s390x" ]; then
  echo -1 > "$binfmt/qemu-s390x"
  echo "fresh: unregistered qemu-s390x"
fi
if [ -s "$state/packages" ]; then
  mapfile -t pkgs < <(sort -u "$state/packages")
  echo "fresh: purging ${pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${pkgs[@]}" >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
fi
# Only our own mount: another tool's binfmt entries would still need it.
if [ -s "$state/mounts" ] && grep -q " $binfmt binfmt_misc " /proc/self/mounts &&
  [ -z "$(ls "$binfmt" | grep -vx 'register\|status')" ]; then
  umount "$binfmt" && echo "fresh: unmounted binfmt_misc"
fi
if [ -s "$state/arch" ] && dpkg --print-foreign-architectures | grep -qx s390x; then
  dpkg --remove-architecture s390x && echo "fresh: removed dpkg architecture s390x"
  apt-get update -qq
fi
rm -rf "$state"
# What a new machine has: nothing of the above; the check must say so.
"$top/vmtests/install-deps.sh" --check | sed 's/^/fresh: before: /' || true

echo "fresh: emptying $cache and $work"
remove "$cache" "$work"
mkdir -p "$work"
git clone -q --branch "$branch" "$top" "$work/clone"
echo "fresh: cloned $branch at $(git -C "$work/clone" log -1 --format='%h %s')"
echo "fresh: running .ci/run (log: $work/ci.log)"
start=$(date +%s)
set +e
(cd "$work/clone" && env CI=true CACHE="$cache" GOCACHE="$work/gocache" GOMODCACHE="$work/gomodcache" \
  bash .ci/run < /dev/null > "$work/ci.log" 2>&1)
status=$?
set -e
took=$(( $(date +%s) - start ))
tail -n 40 "$work/ci.log"
echo "fresh: .ci/run exited $status after ${took}s ($((took / 60)) min $((took % 60)) s)"
exit $status
