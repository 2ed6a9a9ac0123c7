package vmtests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hugelgupf/vmtest/govmtest"
	"github.com/hugelgupf/vmtest/qemu"
	"github.com/u-root/mkuimage/uimage"

	"github.com/dpm-guest-image-tools/dpm-netconf/vmtests/vm"
)

// moduleFiles lists u-root -files specs for the named modules, everything
// they depend on (modules.dep), and the module index files.
// moduleDeps reads the kernel's modules.dep: a module's name to its file
// and its dependencies' files (paths below lib/modules/<release>).
func moduleDeps(t *testing.T, s *vm.Env) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(s.KernelDir, "root/lib/modules", s.Release, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, _ := strings.Cut(sc.Text(), ":")
		// "virtio_net.ko", or compressed as Debian 13's: "virtio_net.ko.xz".
		name, _, _ := strings.Cut(filepath.Base(mod), ".ko")
		deps[name] = append([]string{mod}, strings.Fields(rest)...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deps
}

// moduleFile is a module's file (below lib/modules/<release>), as
// modules.dep names it: "kernel/net/llc/llc.ko" on 6.1, ".ko.xz" on 6.12.
func moduleFile(t *testing.T, s *vm.Env, name string) string {
	t.Helper()
	files, ok := moduleDeps(t, s)[name]
	if !ok {
		t.Fatalf("module %s not in modules.dep of %s", name, s.Release)
	}
	return files[0]
}

func moduleFiles(t *testing.T, s *vm.Env, names ...string) []string {
	t.Helper()
	dir := filepath.Join(s.KernelDir, "root/lib/modules", s.Release)
	deps := moduleDeps(t, s)
	// Built into the kernel (Debian 13 builds virtio_pci in): nothing to load.
	builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(builtin)) {
		name, _, _ := strings.Cut(filepath.Base(l), ".ko")
		deps[name] = nil
	}
	seen := map[string]bool{}
	var specs []string
	for _, n := range names {
		files, ok := deps[n]
		if !ok {
			t.Fatalf("module %s not in %s/modules.dep", n, dir)
		}
		for _, p := range files {
			if !seen[p] {
				seen[p] = true
				specs = append(specs, fmt.Sprintf("%s:lib/modules/%s/%s", filepath.Join(dir, p), s.Release, p))
			}
		}
	}
	for _, p := range []string{"modules.dep", "modules.builtin", "modules.order"} {
		specs = append(specs, fmt.Sprintf("%s:lib/modules/%s/%s", filepath.Join(dir, p), s.Release, p))
	}
	return specs
}

// TestInGuest runs package inguest inside the s390x guest with govmtest:
// module loading, the kernel's answers to grouping, cio_ignore and netlink
// on real virtio-net-ccw NICs (scenario 4 and the real-kernel parts of the
// unit tests). Results come back over 9p (virtio-9p-pci, a zPCI device).
func TestInGuest(t *testing.T) {
	s := requireVM(t)
	// govmtest takes the guest from the environment.
	t.Setenv("VMTEST_ARCH", string(vm.S390x))
	t.Setenv("VMTEST_QEMU", vm.QEMU)
	t.Setenv("VMTEST_KERNEL", filepath.Join(s.KernelDir, "vmlinuz"))
	nics := vm.NICArgs(vm.VirtioNICs("0001", "0002", "0003", "0004"))
	files := moduleFiles(t, s, "ccwgroup", "qeth", "qeth_l2", "virtio_net", "virtio_pci", "9pnet_virtio", "9p")
	// Outside the guest the tests skip: inside it, none may.
	var (
		mu            sync.Mutex
		passed, skips []string
	)
	watch := qemu.LogSerialByLine(func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if i := strings.Index(line, "--- SKIP: "); i >= 0 {
			skips = append(skips, line[i:])
		} else if i := strings.Index(line, "--- PASS: "); i >= 0 {
			passed = append(passed, line[i:])
		}
	})
	govmtest.Run(t, "inguest",
		govmtest.WithPackageToTest("github.com/dpm-guest-image-tools/dpm-netconf/vmtests/inguest"),
		govmtest.WithGoTestTimeout(2*time.Minute),
		govmtest.WithUimage(uimage.WithFiles(files...)),
		govmtest.WithQEMUFn(
			// 9p needs its modules before the test runner mounts the share.
			qemu.WithAppendKernel("cio_ignore=all,!condev", "modules_load=virtio_pci,9pnet_virtio,9p"),
			qemu.ArbitraryArgs(nics...),
			qemu.WithVMTimeout(5*time.Minute),
			watch,
		),
	)
	mu.Lock()
	defer mu.Unlock()
	if len(skips) > 0 || len(passed) == 0 {
		t.Errorf("in the guest: %d passed, skipped: %q", len(passed), skips)
	}
}
