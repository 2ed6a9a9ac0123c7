package apply

import (
	"fmt"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/cmdline"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

// Status is what the system shows for one listed NIC, read without
// changing anything.
type Status struct {
	BusID     string   `json:"bus_id"`
	Kind      Kind     `json:"kind"`
	Online    bool     `json:"online"`
	Layer2    *int     `json:"layer2,omitempty"` // qeth only; -1 = not chosen
	Port      *int     `json:"port,omitempty"`   // qeth only
	Interface string   `json:"interface,omitempty"`
	WantMAC   string   `json:"wanted_mac,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	OK        bool     `json:"ok"`
	Differs   []string `json:"differs"`
}

// ReadStatus reports each NIC's state against what the list asks for.
func ReadStatus(fs sysfs.FS, nics []cmdline.NIC) []Status {
	sys := ccw.Sys{FS: fs}
	out := make([]Status, 0, len(nics))
	for _, n := range nics {
		out = append(out, readOne(sys, n))
	}
	return out
}

func readOne(sys ccw.Sys, n cmdline.NIC) Status {
	id := n.BusID()
	s := Status{BusID: id, Differs: []string{}}
	if n.MAC != nil {
		s.WantMAC = n.MAC.String()
	}
	differ := func(format string, args ...any) { s.Differs = append(s.Differs, fmt.Sprintf(format, args...)) }
	var nd ccw.Netdev
	var ndErr error
	switch {
	case sys.Grouped(id):
		s.Kind = KindQeth
		q, err := sys.QethState(id)
		if err != nil {
			differ("unreadable: %v", err)
			break
		}
		s.Online, s.Layer2, s.Port = q.Online, &q.Layer2, &q.Port
		if !q.Online {
			differ("offline")
		}
		if q.Layer2 != 1 {
			differ("layer2=%d, want 1", q.Layer2)
		}
		if q.Port != n.Port {
			differ("port %d, want %d", q.Port, n.Port)
		}
		nd, ndErr = sys.QethNetdev(id)
	default:
		dev, err := sys.Device(id)
		switch {
		case sysfs.IsNotExist(err):
			s.Kind = KindMissing
			differ("no device %s (absent or cio_ignored)", id)
			return s
		case err != nil:
			s.Kind = KindMissing
			differ("unreadable: %v", err)
			return s
		case ccw.IsQeth(dev.CUType):
			s.Kind = KindQeth
			differ("not grouped")
			return s
		case dev.CUType == ccw.CUTypeVirtio:
			s.Kind = KindVirtio
			s.Online = dev.Online
			if !dev.Online {
				differ("offline")
			}
			nd, ndErr = sys.VirtioNetdev(id)
		default:
			s.Kind = KindOther
			differ("CU type %s is not a NIC", dev.CUType)
			return s
		}
	}
	if ndErr != nil {
		differ("no network interface")
	} else {
		s.Interface, s.MAC = nd.Name, nd.MAC
		if s.WantMAC != "" && nd.MAC != s.WantMAC {
			differ("MAC %s, want %s", nd.MAC, s.WantMAC)
		}
	}
	s.OK = len(s.Differs) == 0
	return s
}
