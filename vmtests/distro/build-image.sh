#!/usr/bin/env bash
# Builds (or finds cached) the disks of a distro boot test: a Debian 12
# s390x root from build-root.sh with a Debian kernel (KERNEL_DIR: Debian
# 12's 6.1 or Debian 13's 6.12), dpm-netconf, a test report unit and a
# NoCloud seed disk. Prints the image folder last.
#   usage: build-image.sh CACHE_DIR KERNEL_DIR [dracut | dracut-systemd | initramfs-tools]
# dracut (the default): `make install` of this tree in a root with dracut,
#   and two dracut initramfs images built in it (chroot through qemu-user)
#   with our module added: the systemd flavour and the shell flavour
#   (--omit systemd). Cached under CACHE_DIR/distro/image-<release>-<key>.
# dracut-systemd: the same with the systemd flavour only.
# initramfs-tools: a root with Debian's own initramfs builder and no
#   dracut, where the original DPM tools' files were placed by hand (as in
#   images built for them), then our .deb installed by dpkg, then
#   `update-initramfs -c`. dpkg's output is kept in dpkg-install.log.
#   Cached under CACHE_DIR/distro/itools-<release>-<key>.
# The keys cover the root, the kernel and what make install puts into an
# image (and the package scripts), not the version stamp: a commit that
# changes nothing of that reuses the images.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
usage="usage: build-image.sh CACHE_DIR KERNEL_DIR [dracut | dracut-systemd | initramfs-tools]"
cache=$(realpath -m "${1:?$usage}")
kdir=$(realpath "${2:?$usage}")
flavour=${3:-dracut}
release=$(cat "$kdir/release")
case "$flavour" in
dracut | dracut-systemd) packages=$here/packages.txt prefix=image ;;
initramfs-tools) packages=$here/packages-initramfs-tools.txt prefix=itools ;;
*) echo "image: unknown flavour $flavour" >&2; exit 2 ;;
esac

roottar=$("$here/build-root.sh" "$cache" "$packages" | tail -1)
stage=$(mktemp -d "$cache/distro/install-XXXXXX")
root=
# The roots have the host's /dev, /proc and /sys bound in while chroot
# runs. A run killed before its cleanup leaves them, and a plain rm -rf of
# such a folder later deletes the host's device nodes (seen: /dev emptied).
# unmount_below PATH unmounts whatever is mounted below PATH; remove PATH...
# does that, then never lets rm leave PATH's filesystem.
unmount_below() {
  local m
  for m in $(awk -v p="$(realpath "$1")/" 'index($2 "/", p) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m"
  done
}
cleanup_mounts() { [ -z "$root" ] || [ ! -e "$root" ] || unmount_below "$root"; }
remove() {
  local p
  for p in "$@"; do
    [ -e "$p" ] || continue
    unmount_below "$p"
    rm -rf --one-file-system "$p"
  done
}
trap 'cleanup_mounts; remove "$stage"' EXIT
trap 'exit 130' INT TERM HUP
# Builds of two kernels' images run side by side (make vmtest-distro): make
# install and make package write the same files under bin/, one at a time.
lock=$cache/distro/.make.lock
flock "$lock" make -s -C "$top" install DESTDIR="$stage" PREFIX=/usr INSTALL_ARCH=s390x >&2
tree_key=$( (basename "$roottar"; echo "$release"; cat "$here/build-image.sh"; cd "$stage" && find . -type f -exec sha256sum {} + | sort; find . -type l -printf '%p -> %l\n' | sort;
  echo "$flavour"; if [ "$flavour" = initramfs-tools ]; then find "$top"/dist/package -maxdepth 1 -type f ! -name '*_test.go' -exec cat {} +; fi) | sha256sum | cut -c1-12)
# Two caches: the initramfs images (dracut under qemu-user: minutes) are
# keyed on what goes into them — the root, the kernel, our install tree,
# this script (how dracut is run);
# the disks (a minute) also on the test's report files and this script, so
# a change to the test's guest side does not run dracut again.
key=$( (echo "$tree_key"; cat "$here/build-image.sh" "$here"/dpm-distro-report.*) | sha256sum | cut -c1-12)
# Each kernel's images are kept beside the other's (named by its release);
# a rebuild removes only the same kernel's older ones.
initrds="$cache/distro/initrd-$release-$tree_key"
out="$cache/distro/$prefix-$release-$key"
if [ -e "$out/.complete" ]; then
  echo "image: cached $out" >&2
  echo "$out"
  exit 0
fi

# unpack_root DIR: the Debian root with the kernel and our install tree,
# the unit enabled by its preset, as an image builder (or a package's
# postinst) leaves it; make install links nothing into sysinit.target.wants.
unpack_root() {
  root=$1
  mkdir -p "$root"
  echo "image: unpacking the root, the kernel $release and our install tree" >&2
  tar -xf "$roottar" -C "$root"
  cp -a "$kdir/root/lib/modules" "$root/lib/"
  cp -a "$kdir/root/boot/." "$root/boot/"
  cp -a "$stage/." "$root/"
  for m in proc sys dev; do mount --bind "/$m" "$root/$m"; done
  chroot "$root" systemctl preset dpm-netconf.service >&2
}

# The original DPM image tools' files, as images built for them have them
# (placed by hand): each says so on the console if it ever runs.
place_original_tools() {
  local r=$1 say='echo "DPMORIGINAL $0 ran" > /dev/console'
  printf '#!/bin/sh\n%s\n' "$say" > "$r/usr/bin/autoconfigure_networking.sh"
  printf '#!/bin/sh\n%s\n' "$say" > "$r/usr/bin/setmac.sh"
  chmod 0755 "$r/usr/bin/autoconfigure_networking.sh" "$r/usr/bin/setmac.sh"
  mkdir -p "$r/etc/udev/rules.d"
  echo 'ACTION=="add", SUBSYSTEM=="net", RUN+="/bin/sh -c '"'"'echo DPMORIGINAL 80-setmac.rules ran > /dev/console'"'"'"' > "$r/etc/udev/rules.d/80-setmac.rules"
  printf '[Unit]\nDescription=original DPM tools\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo DPMORIGINAL autoconfigure_networking.service ran > /dev/console"\n[Install]\nWantedBy=multi-user.target\n' \
    > "$r/etc/systemd/system/autoconfigure_networking.service"
  ln -sf /etc/systemd/system/autoconfigure_networking.service "$r/etc/systemd/system/multi-user.target.wants/autoconfigure_networking.service"
}

if [ "$flavour" = initramfs-tools ]; then
  remove "$cache"/distro/itools-"$release"-*
  mkdir -p "$out"
  root="$out/root"
  mkdir -p "$root"
  echo "image: unpacking the root and the kernel $release; the original tools' files; our .deb by dpkg" >&2
  tar -xf "$roottar" -C "$root"
  cp -a "$kdir/root/lib/modules" "$root/lib/"
  cp -a "$kdir/root/boot/." "$root/boot/"
  place_original_tools "$root"
  # The test image lists the modules the guest needs for its root (the
  # default MODULES=most copies hundreds, which takes minutes under
  # qemu-user); so the NIC drivers in it come from our hook alone.
  echo MODULES=list > "$root/etc/initramfs-tools/conf.d/dpm-test"
  printf 'virtio_blk\ncrc32c_generic\next4\n' >> "$root/etc/initramfs-tools/modules"
  flock "$lock" sh -c 'make -s -C "$1" package PKG_ARCHES=s390x >&2 && cp "$1"/bin/dpm-netconf_*_s390x.deb "$2"' - "$top" "$root/tmp/dpm-netconf.deb"
  for m in proc sys dev; do mount --bind "/$m" "$root/$m"; done
  start=$(date +%s)
  chroot "$root" dpkg -i /tmp/dpm-netconf.deb 2>&1 | tee "$out/dpkg-install.log" >&2
  rm "$root/tmp/dpm-netconf.deb"
  # dpkg's trigger ran update-initramfs (the kernel's modules are there);
  # else do what Debian's kernel package does at install.
  if [ ! -e "$root/boot/initrd.img-$release" ]; then
    chroot "$root" update-initramfs -c -k "$release" >&2
  fi
  echo "image: dpkg -i with update-initramfs took $(( $(date +%s) - start ))s" >&2
  cp "$root/boot/initrd.img-$release" "$out/initrd-initramfs-tools.img"
  cp -L "$root/boot/vmlinuz-$release" "$out/vmlinuz"
  cleanup_mounts
else
if [ ! -e "$initrds/.complete" ]; then
  remove "$cache"/distro/initrd-"$release"-*   # one per kernel: they are large
  mkdir -p "$initrds"
  unpack_root "$initrds/root"
  if [ "$flavour" = dracut ]; then
    echo "image: dracut in the root (qemu-user): the systemd and the shell flavour side by side" >&2
  else
    echo "image: dracut in the root (qemu-user): the systemd flavour" >&2
  fi
  start=$(date +%s)
  # dracut's own compression (gzip -9 of ~90 MB) is two thirds of its time
  # under qemu-user (measured: 171 s with it, 65 s without): dracut writes
  # the archive uncompressed and the host's gzip compresses it as dracut's
  # default would (gzip -n -9 --rsyncable), so the guest's kernel unpacks
  # the same kind of image.
  # The image holds what this guest boots from, as a host-only image
  # would: the root disk's drivers (--drivers; our module adds the NICs'
  # itself) and none of the storage the guest has not (encryption, dm,
  # NVDIMM, DASD, DCSS, zFCP LUN masking, resume, virtiofs). Measured
  # with Debian 12's kernel: 28.6 MB and 48 s of dracut for both flavours
  # before, 13.7 MB and 36 s.
  common=(--force --no-hostonly --add dpm-netconf --omit "cio_ignore plymouth crypt dm nvdimm dasd_mod dasd_rules dcssblk lunmask resume virtiofs" --drivers "virtio_blk ext4 crc32c_generic" --no-compress --kver "$release")
  chroot "$root" dracut "${common[@]}" /boot/initrd-systemd.cpio > "$initrds/dracut-systemd.log" 2>&1 & systemd_pid=$!
  shell_ok=0
  : > "$initrds/dracut-shell.log"
  if [ "$flavour" = dracut ]; then
    chroot "$root" dracut "${common[@]}" --omit "systemd systemd-initrd dracut-systemd" /boot/initrd-shell.cpio > "$initrds/dracut-shell.log" 2>&1 || shell_ok=$?
  fi
  systemd_ok=0
  wait "$systemd_pid" || systemd_ok=$?
  cat "$initrds/dracut-systemd.log" "$initrds/dracut-shell.log" >&2
  if [ "$systemd_ok" != 0 ] || [ "$shell_ok" != 0 ]; then
    echo "image: dracut failed (systemd flavour: exit $systemd_ok, shell flavour: exit $shell_ok)" >&2
    exit 1
  fi
  gzip -n -9 --rsyncable < "$root/boot/initrd-systemd.cpio" > "$initrds/initrd-systemd.img" &
  if [ "$flavour" = dracut ]; then
    gzip -n -9 --rsyncable < "$root/boot/initrd-shell.cpio" > "$initrds/initrd-shell.img"
  fi
  wait $!
  echo "image: dracut took $(( $(date +%s) - start ))s" >&2
  cp -L "$root/boot/vmlinuz-$release" "$initrds/vmlinuz"
  cleanup_mounts
  remove "$root"
  root=
  touch "$initrds/.complete"
else
  echo "image: cached initramfs images $initrds" >&2
fi

remove "$cache"/distro/image-"$release"-*
mkdir -p "$out"
unpack_root "$out/root"
cleanup_mounts
cp "$initrds"/initrd-*.img "$initrds"/vmlinuz "$out/"
fi

# The guest: root on virtio-blk, console on SCLP with autologin-free
# output, the test's report unit, cloud-init's NoCloud only.
echo "LABEL=root / ext4 defaults 0 1" > "$root/etc/fstab"
echo dpm-guest > "$root/etc/hostname"
echo 'datasource_list: [ NoCloud, None ]' > "$root/etc/cloud/cloud.cfg.d/90-dpm-test.cfg"
install -m 0755 "$here/dpm-distro-report.sh" "$root/usr/local/sbin/dpm-distro-report"
install -m 0644 "$here/dpm-distro-report.service" "$root/etc/systemd/system/"
ln -sf /etc/systemd/system/dpm-distro-report.service "$root/etc/systemd/system/multi-user.target.wants/dpm-distro-report.service"
# No password prompts, no time lost waiting for a network that has no DHCP.
ln -sf /dev/null "$root/etc/systemd/system/systemd-networkd-wait-online.service"

echo "image: making the disks" >&2
mkfs.ext4 -q -F -L root -d "$root" "$out/root.ext4" 3G
seed="$out/seed"
mkdir -p "$seed"
cat > "$seed/meta-data" <<'EOD'
instance-id: dpm-netconf-test
local-hostname: dpm-guest
EOD
# The minimal root has no locales: cloud-config's locale module would fail
# (update-locale: invalid locale settings) and with it cloud-config.service.
printf '#cloud-config\nlocale: false\n' > "$seed/user-data"
# cloud-init finds the NICs by the MACs dpm-netconf gives them.
cat > "$seed/network-config" <<'EOD'
version: 2
ethernets:
  dpm0001:
    match:
      macaddress: "0a:00:00:00:00:11"
    addresses: [192.0.2.11/24]
  dpm0010:
    match:
      macaddress: "0e:11:22:33:44:55"
    addresses: [192.0.2.12/24]
EOD
# NoCloud takes its seed from a vfat or iso9660 filesystem labelled cidata.
rm -f "$out/seed.img"
mkfs.vfat -n CIDATA -C "$out/seed.img" 4096 >/dev/null
mcopy -i "$out/seed.img" "$seed/meta-data" "$seed/user-data" "$seed/network-config" ::
remove "$root" "$seed"
touch "$out/.complete"
echo "image: $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
