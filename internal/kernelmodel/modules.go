package kernelmodel

import (
	"os"
	"path/filepath"
	"strings"
)

// modulesDep is modules.dep of Debian's 6.1 s390x kernel for the modules
// dpm-netconf needs (depmod's format: module: dependencies, deepest last).
var modulesDep = []string{
	"kernel/drivers/s390/cio/ccwgroup.ko:",
	"kernel/drivers/s390/net/qeth.ko: kernel/drivers/s390/cio/ccwgroup.ko",
	"kernel/drivers/s390/net/qeth_l2.ko: kernel/drivers/s390/net/qeth.ko kernel/drivers/s390/cio/ccwgroup.ko kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko",
	"kernel/drivers/s390/net/qeth_l3.ko: kernel/drivers/s390/net/qeth.ko kernel/drivers/s390/cio/ccwgroup.ko",
	"kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko",
	"kernel/net/802/stp.ko: kernel/net/llc/llc.ko",
	"kernel/net/llc/llc.ko:",
	"kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
	"kernel/net/core/failover.ko:",
}

// WriteModulesTree writes lib/modules/<release>/modules.dep (and empty
// module files) below root, as depmod would for the modules above.
func WriteModulesTree(root, release string) error {
	dir := filepath.Join(root, "lib/modules", release)
	for _, line := range modulesDep {
		mod, _, _ := strings.Cut(line, ":")
		p := filepath.Join(dir, mod)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/s390/virtio/virtio_ccw.ko\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(strings.Join(modulesDep, "\n")+"\n"), 0o644)
}
