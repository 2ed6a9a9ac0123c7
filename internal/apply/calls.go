package apply

import (
	"net"
	"strings"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
)

// A worker's calls into the kernel go through these wrappers, which record
// the call under way: a worker still inside one at the deadline is
// reported as stuck in it (a netlink request, a module load, a sysfs read
// during a device's removal), since our exit abandons it.

// enter records the call the worker is making; the returned func ends it.
func (w *worker) enter(call string) func() {
	end := trace.Span(w.busID() + ": " + call)
	endCall := w.inCall(call)
	return func() {
		endCall()
		end()
	}
}

// inCall records the call without a trace mark.
func (w *worker) inCall(call string) func() {
	w.set(func() { w.call = call })
	return func() { w.set(func() { w.call = "" }) }
}

// enterAll records a call the plan makes for every worker: they wait for it.
func enterAll(ws []*worker) func(string) func() {
	return func(call string) func() {
		ends := make([]func(), len(ws))
		for i, w := range ws {
			ends[i] = w.inCall(call + " (while planning, before any NIC's steps)")
		}
		end := trace.Span("plan: " + call)
		return func() {
			end()
			for _, end := range ends {
				end()
			}
		}
	}
}

// trackedFS records each call with enter (a worker's, or enterAll).
type trackedFS struct {
	enter func(call string) func()
	fs    sysfs.FS
}

func (t trackedFS) ReadFile(name string) ([]byte, error) {
	defer t.enter("a read of " + name)()
	return t.fs.ReadFile(name)
}

func (t trackedFS) WriteFile(name string, data []byte) error {
	defer t.enter("a write of " + strings.TrimSpace(string(data)) + " to " + name)()
	return t.fs.WriteFile(name, data)
}

func (t trackedFS) ReadDir(name string) ([]string, error) {
	defer t.enter("a read of the folder " + name)()
	return t.fs.ReadDir(name)
}

func (t trackedFS) Exists(name string) bool {
	defer t.enter("a stat of " + name)()
	return t.fs.Exists(name)
}

func (t trackedFS) ReadLink(name string) (string, error) {
	defer t.enter("a readlink of " + name)()
	return t.fs.ReadLink(name)
}

type trackedLinks struct {
	w     *worker
	links link.Netlink
}

func (t trackedLinks) LinkByIndex(index int) (link.Link, error) {
	defer t.w.enter("RTM_GETLINK (read the interface)")()
	return t.links.LinkByIndex(index)
}

func (t trackedLinks) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	defer t.w.enter("RTM_SETLINK (set MAC)")()
	return t.links.SetHardwareAddr(index, mac)
}

type trackedModules struct {
	w       *worker
	modules ModuleLoader
}

func (t trackedModules) Load(names ...string) ([]string, error) {
	defer t.w.enter("finit_module (load " + strings.Join(names, ", ") + ")")()
	return t.modules.Load(names...)
}

func (t trackedModules) Live(name string) bool {
	defer t.w.enter("a read of /sys/module/" + name + "/initstate")()
	return t.modules.Live(name)
}
