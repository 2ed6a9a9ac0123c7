// Package uevent reads the kernel's kobject events (NETLINK_KOBJECT_UEVENT):
// "add", "change", "bind", "move", ... for devices, drivers and modules. The
// apply engine wakes a NIC's worker when one of its devices changes, instead
// of sleeping between reads.
//
// The kernel sends each event as one datagram, "ACTION@DEVPATH\0KEY=VALUE\0...",
// without a netlink header, so it is read here with a plain socket
// (mdlayher/socket, which makes reads cancellable).
package uevent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/mdlayher/socket"
	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/busid"
)

// Event is one kobject event.
type Event struct {
	Action    string            `json:"action"`    // add, remove, change, move, bind, unbind, online, offline
	DevPath   string            `json:"devpath"`   // below /sys, e.g. /devices/css0/0.0.0000/0.0.0001
	Subsystem string            `json:"subsystem"` // ccw, ccwgroup, net, module, drivers, ...
	Vars      map[string]string `json:"vars,omitempty"`
}

// BusIDs returns every component of the event's path that looks like a
// channel-subsystem bus id ("0.0.0001"). A subchannel's id looks the same
// as a device's; a worker woken by it for nothing only reads again.
func (e Event) BusIDs() []string {
	var ids []string
	for _, part := range strings.Split(e.DevPath, "/") {
		if busid.Valid(part) {
			ids = append(ids, part)
		}
	}
	return ids
}

// Parse decodes one datagram. udev's own re-broadcasts ("libudev" header)
// are not kernel events and are refused.
func Parse(b []byte) (Event, error) {
	fields := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	head := string(fields[0])
	if strings.HasPrefix(head, "libudev") {
		return Event{}, errors.New("uevent: a udev message, not a kernel event")
	}
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || action == "" || !strings.HasPrefix(devpath, "/") {
		return Event{}, fmt.Errorf("uevent: header %q is not ACTION@DEVPATH", truncate(head))
	}
	e := Event{Action: action, DevPath: devpath, Vars: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok || k == "" {
			return Event{}, fmt.Errorf("uevent %s: field %q is not KEY=VALUE", truncate(head), truncate(string(f)))
		}
		e.Vars[k] = v
	}
	// The header and the variables must agree; the variables are the
	// kernel's own record.
	if a, ok := e.Vars["ACTION"]; ok && a != action {
		return Event{}, fmt.Errorf("uevent %s: ACTION=%s disagrees with the header", truncate(head), truncate(a))
	}
	if p, ok := e.Vars["DEVPATH"]; ok && p != devpath {
		return Event{}, fmt.Errorf("uevent %s: DEVPATH=%s disagrees with the header", truncate(head), truncate(p))
	}
	e.Subsystem = e.Vars["SUBSYSTEM"]
	return e, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Source delivers kernel events until it is closed. Events may be lost
// (a full socket buffer); users keep a slow safety poll.
type Source interface {
	Events() <-chan Event
	Close() error
}

// Listener is a Source reading the kernel's NETLINK_KOBJECT_UEVENT socket.
type Listener struct {
	conn   *socket.Conn
	events chan Event
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// Listen subscribes to the kernel's uevents (multicast group 1, the kernel's
// own; udev's re-broadcasts use group 2). Any process may listen
// (lib/kobject_uevent.c sets NL_CFG_F_NONROOT_RECV); device events reach
// every network namespace of the initial user namespace, a net device's only
// its own. Callers open it before the first read of the state it watches,
// so nothing falls between.
func Listen() (*Listener, error) {
	c, err := socket.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM, unix.NETLINK_KOBJECT_UEVENT, "uevent", nil)
	if err != nil {
		return nil, fmt.Errorf("open uevent socket: %w", err)
	}
	// A boot can burst hundreds of events; a larger buffer loses fewer.
	_ = c.SetsockoptInt(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := c.Bind(&unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1, Pid: 0}); err != nil {
		c.Close()
		return nil, fmt.Errorf("bind uevent socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{conn: c, events: make(chan Event, 256), cancel: cancel}
	l.done.Add(1)
	go l.read(ctx)
	return l, nil
}

func (l *Listener) read(ctx context.Context) {
	defer l.done.Done()
	defer close(l.events)
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.conn.Recvfrom(ctx, buf, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue // events were lost; the safety poll covers them
			}
			return
		}
		// Only the kernel (port id 0) sends kernel events.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		e, err := Parse(buf[:n])
		if err != nil {
			continue
		}
		select {
		case l.events <- e:
		default: // a slow reader loses events, as a full socket would
		}
	}
}

// Events implements Source.
func (l *Listener) Events() <-chan Event { return l.events }

// Close implements Source.
func (l *Listener) Close() error {
	l.cancel()
	err := l.conn.Close()
	l.done.Wait()
	return err
}
