package cmdline

import (
	"encoding/json"
	"fmt"
	"io"
)

// planNIC is one NIC of the plan in --json.
type planNIC struct {
	Devno string `json:"devno"`
	BusID string `json:"bus_id"`
	Port  int    `json:"port"`
	MAC   string `json:"mac,omitempty"`
}

// WritePlan writes what apply would do with the list (dpm-netconf plan):
// a line per NIC and per invalid entry, or JSON.
func (l List) WritePlan(w io.Writer, asJSON bool) {
	nics := make([]planNIC, 0, len(l.NICs))
	for _, n := range l.NICs {
		p := planNIC{Devno: n.DevnoString(), BusID: n.BusID(), Port: n.Port}
		if n.MAC != nil {
			p.MAC = n.MAC.String()
		}
		nics = append(nics, p)
	}
	if asJSON {
		errs := l.Errors
		if errs == nil {
			errs = []Error{}
		}
		_ = json.NewEncoder(w).Encode(struct {
			NICs   []planNIC `json:"nics"`
			Errors []Error   `json:"errors"`
		}{nics, errs})
		return
	}
	if len(nics) == 0 && len(l.Errors) == 0 {
		fmt.Fprintln(w, "no NIC listed on the command line: apply would do nothing")
	}
	for i, n := range l.NICs {
		mac := "keep its MAC"
		if n.MAC != nil {
			mac = "set MAC " + n.MAC.String()
		}
		fmt.Fprintf(w, "%s (entry %q at offset %d): free from cio_ignore if ignored; if OSA/HiperSockets: group %s,%s,%s, layer2=1, portno=%d, online; if virtio-net: online; then %s\n",
			nics[i].BusID, n.Entry, n.Offset, n.BusID(), BusID(n.Devno+1), BusID(n.Devno+2), n.Port, mac)
	}
	for _, e := range l.Errors {
		fmt.Fprintf(w, "invalid: %s: not applied\n", e.Error())
	}
}
