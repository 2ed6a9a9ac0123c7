package kernelmodel

import (
	"fmt"
	"os"
	"path/filepath"
)

// Tree writes a static sysfs/procfs tree below a root directory, laid out
// as the kernel lays it out (subchannel directories under css0, bus
// symlinks), for tests of the real file access (sysfs.Root) and for lookup
// benchmarks. Writes to it do nothing kernel-like: semantics live in Model.
type Tree struct {
	Root    string
	nextSch int
}

// CCW adds a CCW device below a new subchannel and its bus symlink.
func (t *Tree) CCW(busID, cutype, chpid string, online bool) (string, error) {
	sch := filepath.Join(t.Root, "sys/devices/css0", fmt.Sprintf("0.0.%04x", t.nextSch))
	t.nextSch++
	dev := filepath.Join(sch, busID)
	o := "0"
	if online {
		o = "1"
	}
	files := map[string]string{
		filepath.Join(sch, "chpids"):  chpid + " 00 00 00 00 00 00 00\n",
		filepath.Join(dev, "cutype"):  cutype + "\n",
		filepath.Join(dev, "devtype"): "0000/00\n",
		filepath.Join(dev, "online"):  o + "\n",
	}
	for p, v := range files {
		if err := writeFile(p, v); err != nil {
			return "", err
		}
	}
	bus := filepath.Join(t.Root, "sys/bus/ccw/devices")
	if err := os.MkdirAll(bus, 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(bus, dev)
	if err != nil {
		return "", err
	}
	return dev, os.Symlink(rel, filepath.Join(bus, busID))
}

// VirtioNet adds a virtio-net-ccw device with its interface.
func (t *Tree) VirtioNet(busID, ifname string, index int, mac string) error {
	dev, err := t.CCW(busID, "3832/01", "00", true)
	if err != nil {
		return err
	}
	n := filepath.Join(dev, "virtio0/net", ifname)
	if err := writeFile(filepath.Join(n, "ifindex"), fmt.Sprintf("%d\n", index)); err != nil {
		return err
	}
	return writeFile(filepath.Join(n, "address"), mac+"\n")
}

// File writes any other file, e.g. "proc/cmdline".
func (t *Tree) File(name, content string) error {
	return writeFile(filepath.Join(t.Root, name), content)
}

func writeFile(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}
