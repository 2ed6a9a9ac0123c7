#!/usr/bin/env bash
# Fetches the current Debian s390x kernel package (the one linux-image-s390x
# depends on today, resolved with apt, not hard-coded), unpacks it under the
# cache folder and runs depmod. Prints the unpacked folder's path last.
#   usage: fetch-kernel.sh CACHE_DIR
set -euo pipefail
cache=$(realpath -m "${1:?usage: fetch-kernel.sh CACHE_DIR}")/kernel
mkdir -p "$cache"

"$(dirname "$0")/install-deps.sh" # dpkg's s390x architecture, depmod
# apt's progress is shown only when it fails.
quietly() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }
pkg=$(apt-cache depends linux-image-s390x:s390x 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^:]*\):s390x$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  echo "kernel: refreshing package lists" >&2
  quietly apt-get update
  pkg=$(apt-cache depends linux-image-s390x:s390x | sed -n 's/^ *Depends: \(linux-image-[^:]*\):s390x$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "kernel: cannot resolve linux-image-s390x:s390x" >&2; exit 1; }
ver=$(apt-cache policy "$pkg:s390x" | sed -n 's/^ *Candidate: //p')
kver=${pkg#linux-image-}
dir="$cache/${pkg}_${ver}"

if [ ! -e "$dir/.complete" ]; then
  rm -rf "$dir" && mkdir -p "$dir/root"
  echo "kernel: downloading $pkg $ver (s390x)" >&2
  (cd "$dir" && quietly apt-get download "$pkg:s390x")
  dpkg-deb -x "$dir"/*.deb "$dir/root"
  rm -f "$dir"/*.deb
  depmod -b "$dir/root" "$kver"
  ln -sfn "root/boot/vmlinuz-$kver" "$dir/vmlinuz"
  echo "$kver" > "$dir/release"
  touch "$dir/.complete"
fi
ln -sfn "$(basename "$dir")" "$cache/current"
echo "kernel: $pkg $ver in $dir" >&2
echo "$dir"
