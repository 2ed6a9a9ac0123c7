package kmod

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

func TestLoadOrdersDependenciesAndSkipsLoaded(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	m := kernelmodel.New()
	m.LoadModules("llc") // loaded earlier: /sys/module/llc is live
	var mu sync.Mutex
	var order []string
	l := &Loader{Root: root, FS: m, Insmod: func(path string) error {
		mu.Lock()
		order = append(order, strings.TrimSuffix(filepath.Base(path), ".ko"))
		mu.Unlock()
		return m.Insmod(path)
	}}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // NIC workers ask concurrently
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each of them reports the modules: which one made the
			// finit_module call is chance (and a NIC's report must not
			// depend on it).
			if loaded, err := l.Load(Qeth...); err != nil || !slices.Equal(loaded, Qeth) {
				t.Errorf("Load = %v, %v; want %v", loaded, err, Qeth)
			}
		}()
	}
	wg.Wait()
	if _, err := l.Load(Virtio...); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []string{"ccwgroup", "qeth", "qeth_l2", "bridge", "stp", "virtio_net", "net_failover", "failover"} {
		if !m.Loaded(mod) {
			t.Errorf("%s not loaded", mod)
		}
	}
	pos := func(s string) int { return slices.Index(order, s) }
	for _, dep := range [][2]string{{"ccwgroup", "qeth"}, {"qeth", "qeth_l2"}, {"bridge", "qeth_l2"}, {"stp", "bridge"}, {"failover", "net_failover"}, {"net_failover", "virtio_net"}} {
		if pos(dep[0]) < 0 || pos(dep[0]) > pos(dep[1]) {
			t.Errorf("%s must load before %s; order %v", dep[0], dep[1], order)
		}
	}
	// Each module file is loaded once, even with four callers.
	counts := map[string]int{}
	for _, mod := range order {
		counts[mod]++
	}
	for mod, n := range counts {
		if n != 1 {
			t.Errorf("%s loaded %d times: %v", mod, n, order)
		}
	}
}

func TestLoadSkipsLoadedModules(t *testing.T) {
	m := kernelmodel.New()
	m.LoadModules("ccwgroup", "qeth", "qeth_l2")
	l := &Loader{Root: "/nonexistent", FS: m, Insmod: func(p string) error { t.Errorf("loaded %s", p); return nil }}
	loaded, err := l.Load(Qeth...)
	if err != nil || len(loaded) != 0 {
		t.Errorf("Load = %v, %v; want nothing loaded", loaded, err)
	}
}

func TestLoadErrors(t *testing.T) {
	root := t.TempDir()
	l := &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) error { return nil }}
	if _, err := l.Load("qeth"); err == nil || !strings.Contains(err.Error(), "no kernel modules") {
		t.Errorf("no lib/modules: err = %v", err)
	}
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	l = &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) error { return nil }}
	_, err := l.Load("no_such_module")
	if err == nil || !strings.Contains(err.Error(), `load module no_such_module`) {
		t.Errorf("unknown module: err = %v", err)
	}
	if _, err2 := l.Load("no_such_module"); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Load = %v, want the same error", err2)
	}
	if err := os.MkdirAll(filepath.Join(root, "lib/modules/6.2.0-other"), 0o755); err != nil {
		t.Fatal(err)
	}
	l = &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) error { return nil }}
	if _, err := l.Load("qeth"); err == nil || !strings.Contains(err.Error(), "holds 2 kernel releases") {
		t.Errorf("two releases: err = %v", err)
	}
}

// A module that udev is loading at the same moment answers EEXIST: that
// is success; one that fails to load is an error naming the file and
// errno.
func TestLoadEEXISTIsSuccessOtherErrnosAreNot(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) error { return unix.EEXIST }}
	if _, err := l.Load(Virtio...); err != nil {
		t.Errorf("EEXIST: %v", err)
	}
	l = &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(p string) error {
		if strings.HasSuffix(p, "/failover.ko") {
			return unix.ENOEXEC
		}
		return nil
	}}
	_, err := l.Load(Virtio...)
	if err == nil || !strings.Contains(err.Error(), "load module virtio_net: finit_module failover.ko: ENOEXEC (exec format error)") {
		t.Errorf("ENOEXEC: %v", err)
	}
	if !errors.Is(err, unix.ENOEXEC) {
		t.Errorf("errors.Is(%v, ENOEXEC) = false: the errno is lost", err)
	}
}

// A failed load is not remembered: the next call (another worker, a
// later event) tries again, and only successes are kept.
func TestLoadRetriesAfterFailure(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	m := kernelmodel.New()
	fail := true
	var calls []string
	l := &Loader{Root: root, FS: m, Insmod: func(p string) error {
		calls = append(calls, filepath.Base(p))
		if fail && strings.HasSuffix(p, "/virtio_net.ko") {
			return unix.ENOMEM
		}
		return m.Insmod(p)
	}}
	if _, err := l.Load(Virtio...); !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("first Load = %v, want ENOMEM", err)
	}
	fail = false
	loaded, err := l.Load(Virtio...)
	if err != nil || !slices.Equal(loaded, []string{"virtio_net"}) {
		t.Fatalf("second Load = %v, %v; want virtio_net loaded", loaded, err)
	}
	// failover and net_failover loaded once; virtio_net tried twice.
	if want := []string{"failover.ko", "net_failover.ko", "virtio_net.ko", "virtio_net.ko"}; !slices.Equal(calls, want) {
		t.Errorf("finit_module calls %v, want %v", calls, want)
	}
}

// EBUSY and EAGAIN come from a load of the same module by someone else
// (udev) that is going or has just failed: transient, retried after
// reading the module's state again; still busy after the tries, an error
// that keeps the errno.
func TestLoadConcurrentLoadIsTransient(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	for _, errno := range []unix.Errno{unix.EBUSY, unix.EAGAIN} {
		synctest.Test(t, func(t *testing.T) {
			m := kernelmodel.New()
			busy := 2
			l := &Loader{Root: root, FS: m, Insmod: func(p string) error {
				if strings.HasSuffix(p, "/virtio_net.ko") && busy > 0 {
					busy--
					return errno
				}
				return m.Insmod(p)
			}}
			if _, err := l.Load(Virtio...); err != nil || !m.Loaded("virtio_net") {
				t.Errorf("%v twice, then loaded: Load = %v", errno, err)
			}
			// Another loader's load finishes while we wait: found live, not ours.
			m2 := kernelmodel.New()
			l2 := &Loader{Root: root, FS: m2, Insmod: func(p string) error {
				if strings.HasSuffix(p, "/virtio_net.ko") {
					m2.LoadModules("virtio_net")
					return errno
				}
				return m2.Insmod(p)
			}}
			if loaded, err := l2.Load(Virtio...); err != nil || slices.Contains(loaded, "virtio_net") {
				t.Errorf("%v, then live by another: Load = %v, %v", errno, loaded, err)
			}
			l3 := &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(p string) error {
				if strings.HasSuffix(p, "/failover.ko") {
					return errno
				}
				return nil
			}}
			_, err := l3.Load(Virtio...)
			if !errors.Is(err, errno) || !strings.Contains(err.Error(), "kept it busy 5 times") {
				t.Errorf("%v every time: Load = %v", errno, err)
			}
		})
	}
}

// Live: a module is usable once its init ran, or when it is built in;
// /sys/module/<m> alone (it appears when loading starts) is not enough.
func TestLive(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	m := kernelmodel.New()
	m.LoadModules("qeth")
	l := &Loader{Root: root, Release: "6.1.0-test-s390x", FS: m}
	for name, want := range map[string]bool{"qeth": true, "qeth_l2": false, "virtio_ccw": true /* modules.builtin */} {
		if got := l.Live(name); got != want {
			t.Errorf("Live(%s) = %v, want %v", name, got, want)
		}
	}
	// A kernel without a module tree: nothing to load, everything it has
	// is built in.
	bare := &Loader{Root: t.TempDir(), Release: "6.1.0-test-s390x", FS: kernelmodel.New()}
	if !bare.Live("qeth_l2") {
		t.Error("no module tree: qeth_l2 not taken as built in")
	}
}

// Modules that another loader (udev) loaded at the same time are not
// reported as ours.
func TestLoadReportsOnlyOwnLoads(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Root: root, Release: "6.1.0-test-s390x", FS: kernelmodel.New(), Insmod: func(p string) error {
		if strings.HasSuffix(p, "/virtio_net.ko") {
			return unix.EEXIST
		}
		return nil
	}}
	loaded, err := l.Load(Virtio...)
	if err != nil || len(loaded) != 0 {
		t.Errorf("Load = %v, %v; want nothing of ours", loaded, err)
	}
}

// TestFinitDecompression: a compressed module goes to the kernel with
// MODULE_INIT_COMPRESSED_FILE; only a kernel that cannot decompress it
// (EINVAL, EOPNOTSUPP) gets it decompressed here through init_module;
// every other answer is the kernel's, as it came.
func TestFinitDecompression(t *testing.T) {
	image := []byte("\x7fELF a module image")
	dir := t.TempDir()
	plain := filepath.Join(dir, "m.ko")
	if err := os.WriteFile(plain, image, 0o644); err != nil {
		t.Fatal(err)
	}
	packed := filepath.Join(dir, "m.ko.xz")
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(image); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packed, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		file      string
		finitErr  error
		wantFlags int
		wantInit  bool // decompressed here, loaded by init_module
		wantErr   error
	}{
		{"plain module", plain, nil, 0, false, nil},
		{"plain module, kernel error", plain, unix.EINVAL, 0, false, unix.EINVAL},
		{"compressed, the kernel decompresses", packed, nil, unix.MODULE_INIT_COMPRESSED_FILE, false, nil},
		{"compressed, flag unknown (before 5.17)", packed, unix.EINVAL, unix.MODULE_INIT_COMPRESSED_FILE, true, nil},
		{"compressed, no CONFIG_MODULE_DECOMPRESS", packed, unix.EOPNOTSUPP, unix.MODULE_INIT_COMPRESSED_FILE, true, nil},
		{"compressed, already loaded", packed, unix.EEXIST, unix.MODULE_INIT_COMPRESSED_FILE, false, unix.EEXIST},
		{"compressed, busy", packed, unix.EBUSY, unix.MODULE_INIT_COMPRESSED_FILE, false, unix.EBUSY},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotFlags = -1
			var gotImage []byte
			finitModule = func(fd int, params string, flags int) error {
				gotFlags = flags
				return tc.finitErr
			}
			initModule = func(img []byte, params string) error {
				gotImage = img
				return nil
			}
			t.Cleanup(func() { finitModule, initModule = unix.FinitModule, unix.InitModule })
			err := finit(tc.file)
			if !errors.Is(err, tc.wantErr) { // errors.Is(err, nil): err == nil
				t.Fatalf("finit(%s) = %v, want %v", filepath.Base(tc.file), err, tc.wantErr)
			}
			if gotFlags != tc.wantFlags {
				t.Errorf("finit_module flags %#x, want %#x", gotFlags, tc.wantFlags)
			}
			if tc.wantInit != (gotImage != nil) {
				t.Fatalf("init_module called: %v, want %v", gotImage != nil, tc.wantInit)
			}
			if tc.wantInit && !bytes.Equal(gotImage, image) {
				t.Errorf("init_module got %q, want the decompressed %q", gotImage, image)
			}
		})
	}
}
