package apply

import (
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent/ueventtest"
)

// A worker wakes for its own devices' events and for module, bus and
// driver events; the rest of a coldplug storm wakes nobody.
func TestDispatchWakes(t *testing.T) {
	for _, tc := range []struct {
		event              uevent.Event
		wakeVirtio, wakeQe bool
	}{
		{uevent.Event{Action: "add", DevPath: "/devices/css0/0.0.0000/0.0.0001", Subsystem: "ccw"}, true, false},
		{uevent.Event{Action: "move", DevPath: "/devices/css0/0.0.0000/0.0.0001/virtio0/net/enc1", Subsystem: "net"}, true, false},
		{uevent.Event{Action: "add", DevPath: "/devices/css0/0.0.0005/0.0.0602", Subsystem: "ccw"}, false, true},
		{uevent.Event{Action: "add", DevPath: "/devices/qeth/0.0.0600/net/eth0", Subsystem: "net"}, false, true},
		{uevent.Event{Action: "add", DevPath: "/module/qeth_l2", Subsystem: "module"}, true, true},
		{uevent.Event{Action: "add", DevPath: "/bus/ccwgroup/drivers/qeth", Subsystem: "drivers"}, true, true},
		{uevent.Event{Action: "add", DevPath: "/bus/ccwgroup", Subsystem: "bus"}, true, true},
		{uevent.Event{Action: "add", DevPath: "/devices/system/cpu/cpu0", Subsystem: "cpu"}, false, false},
		{uevent.Event{Action: "add", DevPath: "/devices/virtual/net/lo", Subsystem: "net"}, false, false},
		{uevent.Event{Action: "change", DevPath: "/devices/virtual/tty/tty1", Subsystem: "tty"}, false, false},
		{uevent.Event{Action: "add", DevPath: "/devices/css0/0.0.0007/0.0.0700", Subsystem: "ccw"}, false, false},
	} {
		cfg := &Config{}
		virtio := newWorker(cfg, cmdline.NIC{Devno: 0x0001}, modeApply)
		qeth := newWorker(cfg, cmdline.NIC{Devno: 0x0600}, modeApply)
		src := ueventtest.NewChan(1)
		stop := dispatch(src, []*worker{virtio, qeth})
		src.Send(tc.event)
		// With room for one event, the second filler goes in only after
		// the dispatcher took the first, so it was done with tc.event.
		for range 2 {
			for !src.Send(uevent.Event{Action: "add", DevPath: "/devices/virtual/mem/null", Subsystem: "mem"}) {
				time.Sleep(time.Millisecond)
			}
		}
		stop()
		if got := len(virtio.wake) == 1; got != tc.wakeVirtio {
			t.Errorf("%s %s: virtio 0.0.0001 woken %v, want %v", tc.event.Action, tc.event.DevPath, got, tc.wakeVirtio)
		}
		if got := len(qeth.wake) == 1; got != tc.wakeQe {
			t.Errorf("%s %s: qeth 0.0.0600 woken %v, want %v", tc.event.Action, tc.event.DevPath, got, tc.wakeQe)
		}
	}
}
