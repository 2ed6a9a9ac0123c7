#!/usr/bin/env bash
# Fetches a Debian s390x kernel package, unpacks it under the cache folder
# and runs depmod. Prints the unpacked folder's path last.
#   usage: fetch-kernel.sh CACHE_DIR [debian12 | debian13]
# debian12 (the default): the package linux-image-s390x depends on today in
#   this machine's own apt sources (Debian 12, kernel 6.1).
# debian13: the same for Debian 13 (trixie, kernel 6.12), resolved with a
#   private apt state under CACHE_DIR/apt/trixie (the machine's mirror,
#   trixie's s390x lists only; the machine's own apt is not touched).
# Neither is hard-coded: apt resolves the version. If the archive no longer
# serves the version the metapackage names (seen on trixie: the index names
# 6.12.117 while the pool has dropped it), the newest version of the same
# kernel series that downloads is taken, and the script says so.
# CACHE_DIR/kernel/<distribution> (debian12, debian13) links to the
# unpacked folder.
set -euo pipefail
top=$(realpath -m "${1:?usage: fetch-kernel.sh CACHE_DIR [debian12 | debian13]}")
distro=${2:-debian12}
cache=$top/kernel
mkdir -p "$cache"

"$(dirname "$0")/install-deps.sh" # dpkg's s390x architecture, depmod
# apt's progress is shown only when it fails.
quietly() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }

apt_opts=()
case "$distro" in
debian12) ;;
debian13)
  # A private apt state: trixie's s390x index from the machine's mirror.
  state=$top/apt/trixie
  mirror=$(sed -n 's/^URIs: \(http[^ ]*debian\/\?\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$state/etc" "$state/lists/partial" "$state/cache/archives/partial"
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nArchitectures: s390x\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" > "$state/etc/trixie.sources"
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$state/etc"
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o APT::Architecture=s390x -o APT::Architectures::=s390x)
  ;;
*) echo "kernel: unknown distribution $distro (debian12 or debian13)" >&2; exit 2 ;;
esac
# The s390x packages' names carry no :s390x in the private (s390x-only) state.
suffix=:s390x
[ "$distro" = debian12 ] || suffix=

depends() { apt-cache "${apt_opts[@]}" depends "linux-image-s390x$suffix" 2>/dev/null | sed -n "s/^ *Depends: \(linux-image-[^:]*\)\(:s390x\)\?$/\1/p" | head -1 || true; }
pkg=$(depends)
if [ -z "$pkg" ]; then
  echo "kernel: refreshing package lists ($distro)" >&2
  quietly apt-get "${apt_opts[@]}" update
  pkg=$(depends)
fi
[ -n "$pkg" ] || { echo "kernel: cannot resolve linux-image-s390x ($distro)" >&2; exit 1; }

# Already unpacked: the folder the link names stands for this package
# (it is that package, or the one taken when this one did not download).
link=$cache/$distro
[ -e "$link" ] || [ "$distro" != debian12 ] || link=$cache/current # caches from before the link's name
if [ -e "$link/.complete" ]; then
  dir=$(realpath "$link")
  if [[ "$(basename "$dir")" == "${pkg}_"* ]] || [ "$(cat "$dir/wanted" 2>/dev/null)" = "$pkg" ]; then
    ln -sfn "$(basename "$dir")" "$cache/$distro"
    echo "kernel: $(basename "$dir") in $dir ($distro)" >&2
    echo "$dir"
    exit 0
  fi
fi

# download PKG: the candidate version; else the newest version of the same
# series (linux-image-<major.minor>.*-s390x) that the pool still serves.
work=$(mktemp -d "$cache/download-XXXXXX")
trap 'rm -rf "$work"' EXIT
got=
try() { (cd "$work" && apt-get "${apt_opts[@]}" download "$1$suffix" >"$work/apt.log" 2>&1) && got=$1; }
if ! try "$pkg"; then
  series=$(echo "$pkg" | sed -n 's/^linux-image-\([0-9]*\.[0-9]*\)\..*-s390x$/\1/p')
  for alt in $(apt-cache "${apt_opts[@]}" pkgnames "linux-image-$series." 2>/dev/null | grep -E -- '-s390x$' | grep -vx "$pkg" | sort -rV); do
    echo "kernel: $pkg does not download; trying $alt" >&2
    try "$alt" && break
  done
fi
[ -n "$got" ] || { cat "$work/apt.log" >&2; echo "kernel: no linux-image-$series.*-s390x downloads ($distro)" >&2; exit 1; }
[ "$got" = "$pkg" ] || echo "kernel: took $got: the archive no longer serves $pkg, which linux-image-s390x names ($distro)" >&2
deb=$(ls "$work"/*.deb)
ver=$(dpkg-deb -f "$deb" Version)
kver=${got#linux-image-}
dir="$cache/${got}_${ver}"
rm -rf "$dir" && mkdir -p "$dir/root"
echo "kernel: unpacking $got $ver (s390x, $distro)" >&2
dpkg-deb -x "$deb" "$dir/root"
# Debian 13's packages install to /usr/lib (merged /usr); the folder keeps
# one layout for both (root/lib/modules, root/boot).
if [ ! -e "$dir/root/lib/modules" ] && [ -d "$dir/root/usr/lib/modules" ]; then
  mkdir -p "$dir/root/lib" && mv "$dir/root/usr/lib/modules" "$dir/root/lib/"
fi
depmod -b "$dir/root" "$kver"
ln -sfn "root/boot/vmlinuz-$kver" "$dir/vmlinuz"
echo "$kver" > "$dir/release"
echo "$pkg" > "$dir/wanted"
touch "$dir/.complete"
ln -sfn "$(basename "$dir")" "$cache/$distro"
echo "kernel: $got $ver in $dir" >&2
echo "$dir"
