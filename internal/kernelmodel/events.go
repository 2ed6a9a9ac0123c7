package kernelmodel

import (
	"strconv"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent/ueventtest"
)

// Subscribe returns a source of the model's kernel events (what a
// NETLINK_KOBJECT_UEVENT socket would deliver from now on), with room for
// buffer undelivered events. The model never waits for a subscriber: when
// the buffer is full, events are lost, as with a full socket buffer. Close
// the source to unsubscribe.
func (m *Model) Subscribe(buffer int) *ueventtest.Chan {
	c := ueventtest.NewChan(buffer)
	m.mu.Lock()
	m.subs = append(m.subs, c)
	m.mu.Unlock()
	return c
}

// emitLocked sends one kobject event (lib/kobject_uevent.c) with ACTION,
// DEVPATH, SUBSYSTEM, SEQNUM and the extra key/value pairs kv. It is called
// with the lock held; Chan.Send never blocks.
func (m *Model) emitLocked(action, devpath, subsystem string, kv ...string) {
	m.seqnum++
	if len(m.subs) == 0 {
		return
	}
	for _, c := range m.subs {
		vars := map[string]string{
			"ACTION":    action,
			"DEVPATH":   devpath,
			"SUBSYSTEM": subsystem,
			"SEQNUM":    strconv.FormatUint(m.seqnum, 10),
		}
		for i := 0; i+1 < len(kv); i += 2 {
			vars[kv[i]] = kv[i+1]
		}
		c.Send(uevent.Event{Action: action, DevPath: devpath, Subsystem: subsystem, Vars: vars})
	}
}
