#!/usr/bin/env bash
# The project's install step: everything host-wide that `make test` (and the
# demo) needs and a new Debian 12 machine lacks, set up in one place.
#   install-deps.sh          install and set up what is missing (root)
#   install-deps.sh --check  say what is missing, one line each; exit 1 if anything is
# What it adds is recorded under $STATE (apt packages it installed, the
# binfmt_misc mount, the qemu-s390x entry, dpkg's s390x architecture), so
# that fresh-check.sh can take exactly that away again.
set -euo pipefail
STATE=${DPM_DEPS_STATE:-/var/lib/dpm-netconf-deps}
BINFMT=/proc/sys/fs/binfmt_misc

# command-or-file package what-for: one line per apt package.
requirements() {
  cat <<'EOT'
qemu-system-s390x qemu-system-misc VM tests and the demo (s390x guests)
qemu-s390x-static qemu-user-static s390x unit tests and the distro roots' programs (binfmt)
update-binfmts binfmt-support registering qemu-s390x with the kernel
depmod kmod modules.dep of the downloaded kernel
mmdebstrap mmdebstrap the Debian s390x roots of the distro boots
arch-test arch-test mmdebstrap's check that s390x programs run (a Recommends)
mkfs.vfat dosfstools the cloud-init seed disk
mcopy mtools the cloud-init seed disk
mkfs.ext4 e2fsprogs the distro boots' root disks
lintian lintian make package-lint (.deb)
rpmlint rpmlint make package-lint (.rpm)
rpm rpm make package-test (.rpm install and removal)
man man-db the manual page's rendering test
systemd-analyze systemd make lint's exposure score of the units
make make every entry point
git git the version stamp, fresh-check's clone
/etc/ssl/certs/ca-certificates.crt ca-certificates downloads over https
EOT
}

missing_packages() {
  local what pkg _
  while read -r what pkg _; do
    case "$what" in
    /*) [ -e "$what" ] || echo "$pkg" ;;
    *) command -v "$what" >/dev/null || echo "$pkg" ;;
    esac
  done < <(requirements)
}

binfmt_mounted() { grep -q " $BINFMT binfmt_misc " /proc/self/mounts; }

check() {
  local bad=0 what pkg why
  while read -r what pkg why; do
    case "$what" in
    /*) [ -e "$what" ] && continue ;;
    *) command -v "$what" >/dev/null && continue ;;
    esac
    echo "missing: $what (apt package $pkg), for $why"
    bad=1
  done < <(requirements)
  if ! binfmt_mounted; then
    echo "missing: binfmt_misc mounted on $BINFMT, for running s390x programs under qemu-user"
    bad=1
  elif [ ! -e "$BINFMT/qemu-s390x" ]; then
    echo "missing: the qemu-s390x binfmt entry, for running s390x programs under qemu-user"
    bad=1
  fi
  if ! dpkg --print-foreign-architectures | grep -qx s390x; then
    echo "missing: dpkg architecture s390x, for downloading Debian's s390x kernel"
    bad=1
  fi
  [ $bad -eq 0 ] || echo "run 'make deps' (as root) to install and set up all of the above"
  return $bad
}

# apt's and dpkg's output is shown only when they fail.
quietly() { local out; out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }; }
record() { mkdir -p "$STATE" && echo "$2" >> "$STATE/$1"; }

install() {
  local pkgs=() p
  mapfile -t pkgs < <(missing_packages | sort -u)
  if ! dpkg --print-foreign-architectures | grep -qx s390x; then
    echo "deps: adding dpkg architecture s390x" >&2
    dpkg --add-architecture s390x
    record arch s390x
    quietly apt-get update
  fi
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "deps: installing ${pkgs[*]}" >&2
    quietly apt-get update
    # Packages that were there before are not ours to remove later.
    for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || record packages "$p"; done
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
  fi
  # A new machine has binfmt_misc unmounted and no qemu-s390x entry; the
  # binfmt-support service that would register it does not run in a
  # container. Careful: with it registered, an s390x binary run by mistake
  # really runs.
  if ! binfmt_mounted; then
    echo "deps: mounting binfmt_misc" >&2
    mount -t binfmt_misc binfmt_misc "$BINFMT"
    record mounts "$BINFMT"
  fi
  if [ ! -e "$BINFMT/qemu-s390x" ]; then
    echo "deps: registering qemu-s390x with binfmt_misc" >&2
    update-binfmts --enable qemu-s390x >/dev/null 2>&1 || update-binfmts --import qemu-s390x >/dev/null 2>&1 || true
    [ -e "$BINFMT/qemu-s390x" ] || { echo "deps: could not register qemu-s390x with binfmt_misc" >&2; exit 1; }
    record binfmt qemu-s390x
  fi
  check >/dev/null || { check >&2; exit 1; }
}

case "${1:-}" in
--check) check ;;
"") install ;;
*) echo "usage: install-deps.sh [--check]" >&2; exit 2 ;;
esac
