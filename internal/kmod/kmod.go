// Package kmod loads the kernel modules a NIC needs, with their
// dependencies from modules.dep, by finit_module(2): early userspace (u-root,
// a minimal initramfs) has no modprobe. It uses u-root's pkg/kmodule.
package kmod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

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
	// FS shows /sys/module, to skip modules that are already loaded.
	FS sysfs.FS
	// Insmod, when set, replaces finit_module (tests record loads with it).
	Insmod func(path string)

	mu     sync.Mutex
	prober *kmodule.Prober
	done   map[string]error
}

// Load loads each module not yet loaded (or built in), with its
// dependencies. It reports which modules it loaded.
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
		if l.FS != nil && l.FS.Exists("/sys/module/"+name) {
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

func (l *Loader) probe(name string) error {
	if l.prober == nil {
		release, err := l.release()
		if err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		opts := kmodule.ProbeOpts{RootDir: l.Root, KVer: release, IgnoreProcMods: true}
		if l.Insmod != nil {
			opts.DryRunCB = l.Insmod
		}
		p, err := kmodule.NewProber(opts)
		if err != nil {
			return fmt.Errorf("load module %s: read %s: %w", name, l.depFile(release), err)
		}
		l.prober = p
	}
	if err := l.prober.Probe(name, ""); err != nil {
		return fmt.Errorf("load module %s (finit_module, dependencies from modules.dep): %w", name, err)
	}
	return nil
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
