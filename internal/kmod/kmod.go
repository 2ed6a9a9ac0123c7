// Package kmod loads the kernel modules a NIC needs, with their
// dependencies from modules.dep, by finit_module(2): early userspace (u-root,
// a minimal initramfs) has no modprobe. It uses u-root's pkg/kmodule.
package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// Modules each kind of NIC needs, in load order.
var (
	Qeth   = []string{"ccwgroup", "qeth", "qeth_l2"}
	Virtio = []string{"virtio_net"}
)

// Loader loads modules once per name; it is safe for concurrent use, so
// every NIC's worker may ask for the same modules.
type Loader struct {
	// Root is the directory holding lib/modules/<release> ("/" live).
	Root string
	// Release is the kernel release; empty means uname -r, or the only
	// release under Root/lib/modules when Root is not "/".
	Release string
	// FS shows /sys/module, to skip modules that are already live.
	FS sysfs.FS
	// Insmod, when set, replaces finit_module (tests load into a model).
	Insmod func(path string) error

	mu     sync.Mutex
	prober *kmodule.Prober
	done   map[string]error
	errMu  sync.Mutex
	errs   []error
}

// Load loads each module that is not live yet (or built in), with its
// dependencies from modules.dep (u-root's kmodule resolves them). A module
// that someone else is loading at the same moment (udev's coldplug by
// modalias) makes finit_module wait for it and answer EEXIST: that is
// success here. Whether the module's driver is usable is for the caller to
// read in sysfs. It reports which modules it loaded.
func (l *Loader) Load(names ...string) (loaded []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = map[string]error{}
	}
	for _, name := range names {
		if err, ok := l.done[name]; ok {
			if err != nil {
				return loaded, err
			}
			continue
		}
		if l.live(name) {
			l.done[name] = nil
			continue
		}
		err := l.probe(name)
		l.done[name] = err
		if err != nil {
			return loaded, err
		}
		loaded = append(loaded, name)
	}
	return loaded, nil
}

// live reports whether a module finished its init (initstate "live"), or
// is built in (a /sys/module entry without initstate).
func (l *Loader) live(name string) bool {
	if l.FS == nil {
		return false
	}
	st, err := sysfs.ReadString(l.FS, "/sys/module/"+name+"/initstate")
	if err == nil {
		return st == "live"
	}
	return sysfs.IsNotExist(err) && l.FS.Exists("/sys/module/"+name)
}

func (l *Loader) probe(name string) error {
	if l.prober == nil {
		release, err := l.release()
		if err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		// kmodule resolves the dependencies and their order; the load itself
		// is ours, so that its errors reach the caller (kmodule's dry-run
		// hook is where it hands over each file, deepest dependency first).
		opts := kmodule.ProbeOpts{RootDir: l.Root, KVer: release, IgnoreProcMods: true, DryRunCB: l.insmod}
		p, err := kmodule.NewProber(opts)
		if err != nil {
			return fmt.Errorf("load module %s: read %s: %w", name, l.depFile(release), err)
		}
		l.prober = p
	}
	l.errMu.Lock()
	l.errs = nil
	l.errMu.Unlock()
	if err := l.prober.Probe(name, ""); err != nil {
		return fmt.Errorf("load module %s (dependencies from modules.dep): %w", name, err)
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	if len(l.errs) > 0 {
		return fmt.Errorf("load module %s: %w", name, errors.Join(l.errs...))
	}
	return nil
}

// insmod loads one module file; kmodule calls it for dependencies in
// parallel.
func (l *Loader) insmod(file string) {
	var err error
	if l.Insmod != nil {
		err = l.Insmod(file)
	} else {
		err = finit(file)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		l.errMu.Lock()
		l.errs = append(l.errs, fmt.Errorf("finit_module %s: %s", filepath.Base(file), errno.Words(err)))
		l.errMu.Unlock()
	}
}

func finit(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return kmodule.FileInit(f, "", 0)
}

func (l *Loader) depFile(release string) string {
	return filepath.Join(l.Root, "lib/modules", release, "modules.dep")
}

func (l *Loader) release() (string, error) {
	if l.Release != "" {
		return l.Release, nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	if l.Root == "" || l.Root == "/" {
		return rel, nil
	}
	// A --root tree holds another kernel's modules than the one running.
	dir := filepath.Join(l.Root, "lib/modules")
	if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
		return rel, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("no kernel modules: %w", err)
	}
	var rels []string
	for _, e := range entries {
		if e.IsDir() {
			rels = append(rels, e.Name())
		}
	}
	if len(rels) != 1 {
		return "", fmt.Errorf("%s holds %d kernel releases (%s), none is %s", dir, len(rels), strings.Join(rels, ", "), rel)
	}
	return rels[0], nil
}
