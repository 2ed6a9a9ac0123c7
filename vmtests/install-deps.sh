#!/usr/bin/env bash
# Installs, with apt-get, what the VM tests and the demo need and this
# Debian machine lacks: qemu-system-s390x (qemu-system-misc), qemu-user
# (the big-endian unit-test run), depmod (kmod) and make.
set -euo pipefail
missing=()
command -v qemu-system-s390x >/dev/null || missing+=(qemu-system-misc)
command -v qemu-s390x-static >/dev/null || missing+=(qemu-user-static)
command -v depmod >/dev/null || missing+=(kmod)
command -v make >/dev/null || missing+=(make)
command -v git >/dev/null || missing+=(git)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
