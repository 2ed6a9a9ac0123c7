#!/usr/bin/env bash
# Builds (or finds cached) a minimal Debian 12 s390x root with systemd, udev,
# cloud-init and dracut or initramfs-tools (the package list says which), through qemu-user binfmt, from Debian's archive
# with mmdebstrap. The tarball is cached under CACHE_DIR/distro, keyed on
# the package list and this script. Prints the tarball's path last.
#   usage: build-root.sh CACHE_DIR [PACKAGE_LIST (default packages.txt)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$(realpath -m "${1:?usage: build-root.sh CACHE_DIR}")/distro
mkdir -p "$cache"
list=${2:-$here/packages.txt}
pkgs=$(grep -v '^#' "$list" | xargs | tr ' ' ,)
# What makes the root: the packages and mmdebstrap's options (not this
# script's comments).
opts=(--mode=root --arch=s390x --variant=minbase
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-exclude=/usr/share/locale/*')
key=$( (grep -v '^#' "$list"; echo "${opts[*]}") | sha256sum | cut -c1-12)
tar="$cache/debian12-s390x-$key.tar"

# Whoever uses the root (mmdebstrap here, dracut, dpkg and rpm's scripts in
# a chroot later) runs its s390x programs through qemu-user's binfmt: the
# install step registers it (a no-op when all is there).
"$here/../install-deps.sh"

if [ -f "$tar" ] && [ -s "$tar" ]; then
  echo "root: cached $tar" >&2
  echo "$tar"
  exit 0
fi

mirror=$(sed -n 's/^URIs: \(http[^ ]*debian\/\?\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
echo "root: building Debian 12 s390x ($pkgs) from $mirror; this takes a while under emulation" >&2
start=$(date +%s)
mmdebstrap "${opts[@]}" --include="$pkgs" bookworm "$cache/partial-$key.tar" "$mirror" >&2
mv "$cache/partial-$key.tar" "$tar"
echo "root: built $tar in $(( $(date +%s) - start ))s ($(du -h "$tar" | cut -f1))" >&2
echo "$tar"
