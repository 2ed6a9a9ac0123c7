package apply

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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

// WriteStatus writes what status found (dpm-netconf status): a table and
// the invalid entries, or JSON.
func WriteStatus(w io.Writer, st []Status, errs []cmdline.Error, asJSON bool) {
	if asJSON {
		if st == nil {
			st = []Status{}
		}
		if errs == nil {
			errs = []cmdline.Error{}
		}
		_ = json.NewEncoder(w).Encode(struct {
			NICs   []Status        `json:"nics"`
			Errors []cmdline.Error `json:"errors"`
		}{st, errs})
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUS ID\tKIND\tONLINE\tLAYER2\tPORT\tINTERFACE\tWANTED MAC\tMAC\tSTATE")
	for _, s := range st {
		state := "ok"
		if !s.OK {
			state = strings.Join(s.Differs, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.BusID, s.Kind, yesNo(s.Online), intOr(s.Layer2), intOr(s.Port),
			orDash(s.Interface), orDash(s.WantMAC), orDash(s.MAC), state)
	}
	tw.Flush()
	for _, e := range errs {
		fmt.Fprintf(w, "invalid: %s\n", e.Error())
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func intOr(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
