package apply

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A run over the whole list (the initramfs's) leaves the bus ids it found
// absent after its settle in Config.AbsentFile; the next run (the real
// root's unit) reads them, and a device still absent then is reported at
// once: the boot pays for a wrong devno once.

func readAbsent(file string) map[string]bool {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	known := map[string]bool{}
	for _, id := range strings.Fields(string(b)) {
		known[id] = true
	}
	return known
}

func writeAbsent(file string, ws []*worker) error {
	var ids []string
	for _, w := range ws {
		w.mu.Lock()
		if w.absentFinal {
			ids = append(ids, w.busID())
		}
		w.mu.Unlock()
	}
	slices.Sort(ids)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}
