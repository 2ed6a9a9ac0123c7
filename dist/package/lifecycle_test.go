// Package dpmpackage holds the test of the packages' maintainer scripts:
// make package-test installs, upgrades, removes and purges the s390x .deb
// and .rpm in a Debian 12 s390x root (qemu-user runs its programs) where the
// original DPM tools' files were placed by hand, and checks each step's
// output and the files it leaves.
package dpmpackage

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The original tools' files as an image builder placed them.
var originals = []struct {
	path, content string
	mode          os.FileMode
}{
	{"usr/bin/autoconfigure_networking.sh", "#!/bin/bash\n# original: calls znetconf for each NIC on the command line\n", 0o755},
	{"usr/bin/setmac.sh", "#!/bin/bash\n# original: ip link set dev $1 address $2\n", 0o755},
	{"etc/udev/rules.d/80-setmac.rules", "ACTION==\"add\", SUBSYSTEM==\"net\", RUN+=\"/usr/bin/setmac.sh\"\n", 0o644},
	{"etc/systemd/system/autoconfigure_networking.service", "[Unit]\nDescription=Configure DPM NICs\nBefore=cloud-init-local.service\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/autoconfigure_networking.sh\n\n[Install]\nWantedBy=multi-user.target\n", 0o644},
}

const (
	oldWants    = "etc/systemd/system/multi-user.target.wants/autoconfigure_networking.service"
	oldUnitPath = "/etc/systemd/system/autoconfigure_networking.service"
	presetLink  = "etc/systemd/system/sysinit.target.wants/dpm-netconf.service"
	aliasLink   = "etc/systemd/system/autoconfigure_networking.service"
	disabled    = ".dpm-netconf-disabled"
)

// What the install says when it takes over, and the removal when it gives
// back: one line per file.
var (
	takeoverLines = []string{
		"dpm-netconf: /usr/bin/autoconfigure_networking.sh (the original DPM tools' script) becomes a link to dpm-netconf",
		"dpm-netconf: /usr/bin/setmac.sh (the original DPM tools' script) becomes a link to dpm-netconf",
		"dpm-netconf: moved the original tools' udev rule to /etc/udev/rules.d/80-setmac.rules" + disabled,
		"dpm-netconf: moved the original tools' unit to /etc/systemd/system/autoconfigure_networking.service" + disabled,
		"dpm-netconf: removed /" + oldWants,
	}
	restoreLines = []string{
		"dpm-netconf: restored the original DPM tools' /usr/bin/autoconfigure_networking.sh",
		"dpm-netconf: restored the original DPM tools' /usr/bin/setmac.sh",
		"dpm-netconf: restored the original DPM tools' /etc/udev/rules.d/80-setmac.rules",
		"dpm-netconf: restored the original DPM tools' /etc/systemd/system/autoconfigure_networking.service",
		"dpm-netconf: enabled the original DPM tools' unit again: /" + oldWants,
	}
)

// family is one package format and how its manager is driven.
type family struct {
	name, glob string
	// The commands: install (run again, it is the upgrade), remove, purge
	// (nil: the family has none).
	install, remove, purge func(root, pkg string) []string
	// The package manager's own state, which changes by design.
	volatile []string
	// A line the first install must print besides the takeover.
	installSays string
	// Folders an RPM distribution always has and a Debian root lacks.
	parents []string
}

var deb = family{
	name: "deb", glob: "dpm-netconf_*_s390x.deb",
	install: func(root, pkg string) []string {
		return []string{"chroot", root, "dpkg", "-i", "/tmp/" + filepath.Base(pkg)}
	},
	remove: func(root, _ string) []string { return []string{"chroot", root, "dpkg", "-r", "dpm-netconf"} },
	purge:  func(root, _ string) []string { return []string{"chroot", root, "dpkg", "-P", "dpm-netconf"} },
	// update-initramfs runs through the trigger (this root has no kernel,
	// so it has nothing to rebuild).
	installSays: "Processing triggers for initramfs-tools",
	volatile:    []string{"var/lib/dpkg/", "var/log/", "tmp/"},
}

var rpm = family{
	name: "rpm", glob: "dpm-netconf-*.s390x.rpm",
	// The host's rpm (amd64) runs the scriptlets chrooted in root. The
	// root is Debian's, so its rpm database knows no /bin/sh: --nodeps.
	install: func(root, pkg string) []string {
		return []string{"rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-U", "--replacepkgs", "--nodeps", "--ignorearch", pkg}
	},
	remove: func(root, _ string) []string {
		return []string{"rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-e", "dpm-netconf"}
	},
	installSays: "dpm-netconf: to configure the NICs in the initramfs too, rebuild it (dracut -f)",
	volatile:    []string{"var/lib/rpm/", "var/tmp/", "tmp/"},
	// Owned by the filesystem package on RPM distributions (as is every
	// /usr/share/man/man* folder).
	parents: []string{"usr/share/licenses", "usr/share/man/man8"},
}

var families = []family{deb, rpm}

func TestLifecycle(t *testing.T) {
	rootTar, pkgDir := requireEnv(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			pkg := onePackage(t, pkgDir, f.glob)
			root := newRoot(t, rootTar, pkg)
			for _, d := range f.parents {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, root, f.volatile)

			out := run(t, f.install(root, pkg)...)
			assertSays(t, out, append(takeoverLines, f.installSays)...)
			assertTakenOver(t, root)
			assertLink(t, root, presetLink, "/dpm-netconf.service")
			assertLink(t, root, aliasLink, "/dpm-netconf.service")

			// An upgrade takes nothing over again and keeps the admin's
			// disable.
			run(t, "chroot", root, "systemctl", "disable", "dpm-netconf.service")
			assertAbsent(t, root, presetLink)
			out = run(t, f.install(root, pkg)...)
			assertSaysNot(t, out, "dpm-netconf: restored", "dpm-netconf: moved", "becomes a link", "dpm-netconf: removed")
			assertAbsent(t, root, presetLink)
			assertTakenOver(t, root)

			// Removal gives the original tools back: the root is as before.
			run(t, "chroot", root, "systemctl", "enable", "dpm-netconf.service")
			out = run(t, f.remove(root, pkg)...)
			assertSays(t, out, restoreLines...)
			assertSame(t, before, snapshot(t, root, f.volatile))
			if f.purge != nil {
				run(t, f.purge(root, pkg)...)
				assertSame(t, before, snapshot(t, root, f.volatile))
			}
		})
	}
	// Purge straight from installed (dpkg runs prerm remove, postrm remove
	// and postrm purge in one go).
	t.Run("deb-purge-installed", func(t *testing.T) {
		f := deb
		pkg := onePackage(t, pkgDir, f.glob)
		root := newRoot(t, rootTar, pkg)
		before := snapshot(t, root, f.volatile)
		run(t, f.install(root, pkg)...)
		out := run(t, f.purge(root, pkg)...)
		assertSays(t, out, restoreLines...)
		assertSame(t, before, snapshot(t, root, f.volatile))
	})
}

// requireEnv gives the Debian root's tarball and the packages' folder, set
// by make package-test; it skips outside CI when they or root are missing.
func requireEnv(t *testing.T) (rootTar, pkgDir string) {
	t.Helper()
	rootTar, pkgDir = os.Getenv("DPM_PACKAGE_ROOT"), os.Getenv("DPM_PACKAGE_DIR")
	var missing string
	switch {
	case rootTar == "" || pkgDir == "":
		missing = "DPM_PACKAGE_ROOT or DPM_PACKAGE_DIR is unset (make package-test sets them)"
	case os.Geteuid() != 0:
		missing = "not root (chroot and package managers need it)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(missing)
		}
		t.Skip("skipped outside CI: " + missing + "; run: make package-test as root")
	}
	return rootTar, pkgDir
}

func onePackage(t *testing.T, dir, glob string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one %s in %s, found %v (make package)", glob, dir, m)
	}
	return m[0]
}

// newRoot unpacks the root, places the original tools' files and the
// package (in /tmp, for dpkg inside the chroot).
func newRoot(t *testing.T, rootTar, pkg string) string {
	t.Helper()
	root := t.TempDir()
	run(t, "tar", "-C", root, "-xf", rootTar)
	for _, o := range originals {
		p := filepath.Join(root, o.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(o.content), o.mode); err != nil {
			t.Fatal(err)
		}
	}
	wants := filepath.Join(root, oldWants)
	if err := os.MkdirAll(filepath.Dir(wants), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(oldUnitPath, wants); err != nil {
		t.Fatal(err)
	}
	run(t, "cp", pkg, filepath.Join(root, "tmp"))
	return root
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("%s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// assertTakenOver checks the files after an install: our links in the
// scripts' place, the old rule and unit renamed aside, their copies kept,
// the old unit's wants link gone, our alias in its name.
func assertTakenOver(t *testing.T, root string) {
	t.Helper()
	for _, o := range originals {
		switch {
		case strings.HasPrefix(o.path, "usr/bin/"):
			assertLink(t, root, o.path, "dpm-netconf")
			assertContent(t, root, "var/backups/dpm-netconf/"+filepath.Base(o.path), o.content)
		case o.path == aliasLink:
			assertContent(t, root, o.path+disabled, o.content)
		default:
			assertAbsent(t, root, o.path)
			assertContent(t, root, o.path+disabled, o.content)
		}
	}
	assertAbsent(t, root, oldWants)
	// The old name stays ours even while the unit is disabled.
	assertLink(t, root, "usr/lib/systemd/system/autoconfigure_networking.service", "dpm-netconf.service")
}

func assertLink(t *testing.T, root, path, suffix string) {
	t.Helper()
	dst, err := os.Readlink(filepath.Join(root, path))
	if err != nil || !strings.HasSuffix(dst, suffix) {
		t.Errorf("/%s: want a link to …%s, have %q (%v)", path, suffix, dst, err)
	}
}

func assertAbsent(t *testing.T, root, path string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, path)); err == nil {
		t.Errorf("/%s: still there", path)
	}
}

func assertContent(t *testing.T, root, path, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil || string(b) != want {
		t.Errorf("/%s: want the original content, have %q (%v)", path, b, err)
	}
}

func assertSays(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("the output does not say %q", l)
		}
	}
}

func assertSaysNot(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(out, l) {
			t.Errorf("the output says %q", l)
		}
	}
}

// snapshot describes every file under root (type, mode, link target,
// content hash) except the package manager's volatile state.
func snapshot(t *testing.T, root string, volatile []string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		for _, v := range volatile {
			if strings.HasPrefix(rel+"/", v) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			dst, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + dst
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		files[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// assertSame lists every file added, removed or changed.
func assertSame(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diff bytes.Buffer
	var paths []string
	for p := range before {
		paths = append(paths, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, a := before[p], after[p]
		switch {
		case b == a:
		case a == "":
			fmt.Fprintf(&diff, "  removed /%s (%s)\n", p, b)
		case b == "":
			fmt.Fprintf(&diff, "  left behind /%s (%s)\n", p, a)
		default:
			fmt.Fprintf(&diff, "  changed /%s: %s -> %s\n", p, b, a)
		}
	}
	if diff.Len() > 0 {
		t.Errorf("the root is not as before the install:\n%s", diff.String())
	}
}
