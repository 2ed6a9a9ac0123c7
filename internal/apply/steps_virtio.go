package apply

// The virtio-net NIC's own steps: its module and online.

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
)

var virtioModulesStep = modulesStep(kmod.Virtio, func(w *worker) (bool, string) {
	if !w.sys.VirtioNetRegistered() {
		return false, "no " + ccw.VirtioNetDriver
	}
	return true, ""
})

var virtioOnlineStep = step{
	name: "online",
	observe: func(w *worker) observation {
		online, err := w.sys.Online(w.busID())
		if err != nil {
			return observation{busy: true, note: err.Error()}
		}
		if online {
			return observation{done: true}
		}
		if drv := w.sys.DriverOf(w.busID()); drv == "" {
			return observation{busy: true, note: "no driver bound yet"}
		}
		return observation{note: "offline"}
	},
	act: func(ctx context.Context, w *worker) error {
		if err := w.slowWrite(ctx, "online", ccw.DevicePath(w.busID())+"/online", "1"); err != nil {
			return err
		}
		w.did("online", "online")
		return nil
	},
	// virtio_ccw's own auto-online answers EINVAL to a second online
	// before online reads 1 (ccw_device_online: state not OFFLINE).
	ambiguous: func(err error) bool { return errors.Is(err, unix.EINVAL) },
}
