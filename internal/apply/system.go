package apply

import (
	"os"
	"path/filepath"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/detach"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kmod"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/logging"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/trace"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
)

// System is apply's view of the machine below root: the real one for "/"
// (kernel events, finit_module, netlink, blocking writes in one helper
// process, which execs argv0 with exe), or a tree of files below another
// root (tests): polling only, writes in-process. Close releases what it
// opened.
type System struct {
	Config
	links  *link.Lazy
	events uevent.Source
	writer *detach.Writer
}

// NewSystem wires Config for the machine below root. Devices found absent
// after a settle are recorded in root/run/dpm-netconf/absent (absent.go).
func NewSystem(root string, log *logging.Logger) *System {
	fs := sysfs.Root(root)
	s := &System{links: &link.Lazy{}}
	s.Config = Config{
		FS:         fs,
		Links:      s.links,
		Modules:    &kmod.Loader{Root: root, FS: fs},
		Log:        log,
		AbsentFile: filepath.Join(root, "run/dpm-netconf/absent"),
	}
	if root != "/" {
		return s
	}
	// Subscribed before the first read, so no change falls between.
	endListen := trace.Span("uevent.Listen")
	ev, err := uevent.Listen()
	endListen()
	if err == nil {
		s.events, s.Events = ev, ev
	} else {
		log.Debugf("no kernel events (%v): polling", err)
	}
	if exe, err := os.Executable(); err == nil {
		s.writer = &detach.Writer{Exe: exe, Argv0: "dpm-netconf", Root: root}
		s.Slow = s.writer
	} else {
		log.Debugf("no path to this binary (%v): blocking writes run in-process", err)
	}
	return s
}

// Close releases the netlink socket and the event listener, and lets the
// write helper end once its writes are done.
func (s *System) Close() {
	s.links.Close()
	if s.writer != nil {
		s.writer.Close()
	}
	if s.events != nil {
		s.events.Close()
	}
}
