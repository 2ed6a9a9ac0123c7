package kmod

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

func TestLoadOrdersDependenciesAndSkipsLoaded(t *testing.T) {
	root := t.TempDir()
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	m := kernelmodel.New()
	m.LoadModules("llc") // loaded earlier: /sys/module/llc exists, the file load answers EEXIST
	var mu sync.Mutex
	var order []string
	l := &Loader{Root: root, FS: m, Insmod: func(path string) {
		mu.Lock()
		order = append(order, strings.TrimSuffix(filepath.Base(path), ".ko"))
		mu.Unlock()
		m.Insmod(path)
	}}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ { // NIC workers ask concurrently
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Load(Qeth...); err != nil {
				t.Error(err)
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
	l := &Loader{Root: "/nonexistent", FS: m, Insmod: func(p string) { t.Errorf("loaded %s", p) }}
	loaded, err := l.Load(Qeth...)
	if err != nil || len(loaded) != 0 {
		t.Errorf("Load = %v, %v; want nothing loaded", loaded, err)
	}
}

func TestLoadErrors(t *testing.T) {
	root := t.TempDir()
	l := &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) {}}
	if _, err := l.Load("qeth"); err == nil || !strings.Contains(err.Error(), "no kernel modules") {
		t.Errorf("no lib/modules: err = %v", err)
	}
	if err := kernelmodel.WriteModulesTree(root, "6.1.0-test-s390x"); err != nil {
		t.Fatal(err)
	}
	l = &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) {}}
	_, err := l.Load("no_such_module")
	if err == nil || !strings.Contains(err.Error(), `load module no_such_module`) {
		t.Errorf("unknown module: err = %v", err)
	}
	// The failure is remembered, not retried by every worker.
	if _, err2 := l.Load("no_such_module"); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Load = %v, want the same error", err2)
	}
	if err := os.MkdirAll(filepath.Join(root, "lib/modules/6.2.0-other"), 0o755); err != nil {
		t.Fatal(err)
	}
	l = &Loader{Root: root, FS: kernelmodel.New(), Insmod: func(string) {}}
	if _, err := l.Load("qeth"); err == nil || !strings.Contains(err.Error(), "holds 2 kernel releases") {
		t.Errorf("two releases: err = %v", err)
	}
}
