#!/usr/bin/env bash
# Builds the s390x u-root initramfs around dpm-netconf: u-root's core
# commands, dpm-netconf as uinit ("dpm-netconf apply", then init goes on to
# the shell), and the kernel modules dpm-netconf loads itself (ccwgroup,
# qeth, qeth_l2, virtio_net and their dependencies from modules.dep) with
# modules.dep, modules.builtin and modules.order, under /lib/modules/<release>.
#   usage: build.sh KERNEL_DIR OUT.cpio [extra u-root args...]
# (u-root runs in vmtests/: give paths in extra args absolute)
# KERNEL_DIR is an unpacked kernel package (root/lib/modules/<release>), as
# `make kernel` leaves it. VERSION (default: git describe) is the binary's
# version, as `make build` sets it.
#
# Two modules: dpm-netconf is built from the product's module (go.mod at the
# top: only what the binary links), static, as `make build` builds it, and
# goes into the image as /bin/dpm-netconf; u-root and its core commands come
# from the tooling module (vmtests/go.mod pins them) and are built there.
set -euo pipefail
kdir=$(realpath "${1:?usage: build.sh KERNEL_DIR OUT.cpio}")
out=$(realpath -m "${2:?usage: build.sh KERNEL_DIR OUT.cpio}")
shift 2
release=$(cat "$kdir/release")
mods="$kdir/root/lib/modules/$release"
[ -f "$mods/modules.dep" ] || { echo "uimage: no modules.dep in $mods (run make kernel)" >&2; exit 1; }

# The modules dpm-netconf loads, and everything they depend on.
want="ccwgroup qeth qeth_l2 virtio_net"
files=()
for m in $want; do
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$mods/modules.dep") || { echo "uimage: module $m not in modules.dep" >&2; exit 1; }
  for f in ${line//:/ }; do
    files+=("$f")
  done
done
args=()
for f in $(printf '%s\n' "${files[@]}" | sort -u); do
  args+=(-files "$mods/$f:lib/modules/$release/$f")
done
for f in modules.dep modules.builtin modules.order; do
  args+=(-files "$mods/$f:lib/modules/$release/$f")
done

top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=${VERSION:-$(git -C "$top" describe --tags --always --dirty 2>/dev/null || echo dev)}
(cd "$top" && GOARCH=s390x CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" \
  -o "$tmp/dpm-netconf" ./cmd/dpm-netconf)
# u-root itself runs on the host; the version is the one vmtests/go.mod pins.
uroot=$tmp/u-root # per build: two kernels' images build side by side
(cd "$top/vmtests" && go build -o "$uroot" github.com/u-root/u-root)
echo "uimage: building $out for s390x (u-root core commands, dpm-netconf $version, $(printf '%s\n' "${files[@]}" | sort -u | wc -l) modules of $release)" >&2
# u-root resolves its commands in the tooling module. goshsmall: a plain
# "$ " prompt; the line editor is unusable over SCLP.
# u-root warns when Go is not one of the versions its list calls tested
# (go1.20 to go1.22, older than anything that builds this tree): the image
# builds with this Go and every boot test runs it, so that warning (its
# line and its tab-indented continuation) is left out; every other line of
# u-root's is kept, and a failed build still fails.
cd "$top/vmtests"
GOARCH=s390x CGO_ENABLED=0 "$uroot" -o "$out" -go-build-tags goshsmall \
  -files "$tmp/dpm-netconf:bin/dpm-netconf" -uinitcmd="/bin/dpm-netconf apply" "${args[@]}" "$@" \
  'github.com/u-root/u-root/cmds/core/*' 2>&1 |
  awk '/You are not using one of the recommended Go versions/ { skip = 1; next } skip && /^\t/ { next } { skip = 0; print }' >&2
ls -l "$out" | awk '{printf "uimage: %s: %.1f MiB\n", $NF, $5/1048576}' >&2
