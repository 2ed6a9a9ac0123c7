package apply

import (
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

// A virtio NIC's net directory is looked up once and then read directly;
// when it no longer reads (the device came back with another virtio<N>
// child), it is looked up again rather than failing.
func TestNetdevLooksUpAgain(t *testing.T) {
	m := kernelmodel.New()
	m.AddVirtioNet("0.0.0001", "52:54:00:00:00:01")
	m.LoadModules("virtio_net")
	cfg := newConfig(t, m)
	w := newWorker(&cfg, parse(t, "0001,0;")[0], modeApply)
	w.setKind(KindVirtio)
	first, err := w.netdev()
	if err != nil || w.netDir == "" {
		t.Fatalf("netdev = %+v, %v (net directory %q)", first, err, w.netDir)
	}
	w.netDir = "/sys/bus/ccw/devices/0.0.0001/virtio99/net" // gone
	again, err := w.netdev()
	if err != nil || again != first {
		t.Errorf("after the directory went: %+v, %v; want %+v", again, err, first)
	}
	if w.netDir == "/sys/bus/ccw/devices/0.0.0001/virtio99/net" {
		t.Error("the stale net directory was kept")
	}
}
