package kernelmodel

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// announceDevLocked registers a device that became visible: its subchannel
// and the CCW device (drivers/s390/cio/device.c io_subchannel_register), and
// binds it when its driver is registered.
func (m *Model) announceDevLocked(d *ccwDev) {
	m.emitLocked("add", "/devices/css0/"+d.schID(), "css")
	cu, model, _ := strings.Cut(d.cutype, "/")
	m.emitLocked("add", d.devPath(), "ccw",
		"CU_TYPE", strings.ToUpper(cu), "CU_MODEL", strings.ToUpper(model),
		"MODALIAS", fmt.Sprintf("ccw:t%sm%sdtdm", strings.ToUpper(cu), strings.ToUpper(model)))
	m.probeLocked(d)
}

// probeLocked binds a visible device to the CCW driver that matches it:
// built-in virtio_ccw for virtio devices, qeth (when registered) for OSA
// and HiperSockets devices.
func (m *Model) probeLocked(d *ccwDev) {
	if d.driver != "" {
		return
	}
	switch {
	case d.virtio:
		d.driver = "virtio_ccw"
	case qethCU(d.cutype) && m.drivers["ccw/qeth"]:
		d.driver = "qeth"
	default:
		return
	}
	m.emitLocked("bind", d.devPath(), "ccw", "DRIVER", d.driver)
}

// cioIgnoreWrite accepts "free <range>[,<range>...]" and "free all"
// (drivers/s390/cio/blacklist.c).
func (m *Model) cioIgnoreWrite(value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	spec, ok := strings.CutPrefix(value, "free ")
	if !ok {
		return unix.EINVAL
	}
	type span struct{ lo, hi uint64 }
	var spans []span
	if strings.TrimSpace(spec) == "all" {
		spans = append(spans, span{0, 0xffff})
	} else {
		for _, r := range strings.Split(spec, ",") {
			from, to, isRange := strings.Cut(strings.TrimSpace(r), "-")
			if !isRange {
				to = from
			}
			lo, err1 := blacklistDevno(from)
			hi, err2 := blacklistDevno(to)
			if err1 != nil || err2 != nil || hi < lo {
				return unix.EINVAL
			}
			spans = append(spans, span{lo, hi})
		}
	}
	for _, s := range spans {
		for _, d := range m.devs {
			if n, _ := devno(d.busID); n >= s.lo && n <= s.hi && !d.visible {
				d.freed = true
			}
		}
		for id := range m.ignoredAbsent {
			if n, _ := devno(id); n >= s.lo && n <= s.hi {
				delete(m.ignoredAbsent, id)
			}
		}
	}
	return nil
}

// blacklistDevno parses a bus id "0.0.1234" or an old-style devno "1234".
func blacklistDevno(s string) (uint64, error) {
	if strings.Count(s, ".") == 2 {
		parts := strings.Split(s, ".")
		if parts[0] != "0" || parts[1] != "0" {
			return 0, unix.EINVAL
		}
		s = parts[2]
	}
	if s == "" || len(s) > 4 {
		return 0, unix.EINVAL
	}
	return kstrtoul(s, 16)
}

// cioIgnoreListLocked is /proc/cio_ignore: the ignored device numbers as
// ranges, those of ignored devices and those no device has alike.
func (m *Model) cioIgnoreListLocked() string {
	var nums []uint64
	for _, d := range m.devs {
		if !d.visible && !d.freed {
			n, _ := devno(d.busID)
			nums = append(nums, n)
		}
	}
	for id := range m.ignoredAbsent {
		n, _ := devno(id)
		nums = append(nums, n)
	}
	slices.Sort(nums)
	var lines []string
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i == j {
			lines = append(lines, fmt.Sprintf("0.0.%04x", nums[i]))
		} else {
			lines = append(lines, fmt.Sprintf("0.0.%04x-0.0.%04x", nums[i], nums[j]))
		}
		i = j + 1
	}
	return strings.Join(lines, "\n")
}

// settle finishes the probing of freed devices (cio_settle): they are
// visible and bound when it returns. virtio_ccw's probe schedules the
// device's online asynchronously (virtio_ccw_probe: async_schedule(
// virtio_ccw_auto_online)), so a freed virtio device reads online=0 here
// and goes online AutoOnlineDelay later.
func (m *Model) settle() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.sortedDevs() {
		if !d.freed {
			continue
		}
		d.visible, d.freed = true, false
		m.announceDevLocked(d)
		if d.driver == "virtio_ccw" && !d.online {
			d.autoOnline = true
			d.autoSeq++
			go m.autoOnline(d, d.autoSeq, m.AutoOnlineDelay)
		}
	}
	return nil
}

// autoOnline is virtio_ccw_auto_online: ccw_device_set_online without the
// onoff guard; the device FSM is busy meanwhile, so online_store answers
// EAGAIN.
func (m *Model) autoOnline(d *ccwDev, seq uint64, delay time.Duration) {
	time.Sleep(delay)
	m.turn(kernelActor, "auto-online "+d.busID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !d.autoOnline || d.autoSeq != seq {
		return // ignored again meanwhile
	}
	d.autoOnline = false
	if d.visible && d.driver == "virtio_ccw" && !d.online {
		m.virtioOnlineLocked(d)
	}
}

// ccwOnline is online_store of drivers/s390/cio/device.c.
func (m *Model) ccwOnline(id, value string) error {
	m.mu.Lock()
	d := m.devs[id]
	if d == nil || !d.visible {
		m.mu.Unlock()
		return unix.ENOENT
	}
	defer m.mu.Unlock()
	// "Prevent conflict between internal I/Os and on-/offline processing":
	// the FSM is busy while virtio_ccw's auto-online runs. (The onoff
	// guard against a second writer needs no flag here: the model does
	// the whole change under its lock.)
	if d.autoOnline {
		return unix.EAGAIN
	}
	var v uint64 = 1
	if value != "force" {
		var err error
		if v, err = kstrtoul(value, 16); err != nil {
			return err
		}
	}
	if err := m.failures["online "+id]; err != nil {
		return err
	}
	// Only virtio_ccw has set_online/set_offline; qeth's CCW driver
	// (ccwgroup_probe_ccwdev) has neither, and no driver means EINVAL.
	canOnOff := d.driver == "virtio_ccw"
	switch v {
	case 0: // online_store_handle_offline -> ccw_device_set_offline
		if !canOnOff || !d.online {
			return unix.EINVAL
		}
		m.virtioOfflineLocked(d)
	case 1: // online_store_recog_and_online -> ccw_device_set_online
		if !canOnOff || d.online {
			return unix.EINVAL
		}
		m.virtioOnlineLocked(d)
	default:
		return unix.EINVAL
	}
	return nil
}

// virtioOnlineLocked is virtio_ccw_online: the device is online and its
// virtio device registered (and bound to virtio_net when that is loaded).
func (m *Model) virtioOnlineLocked(d *ccwDev) {
	d.online = true
	n := 0
	for m.virtioIdx[n] {
		n++
	}
	m.virtioIdx[n] = true
	d.vdev = n
	m.emitLocked("add", d.devPath()+"/"+d.virtioName(), "virtio")
	if m.drivers["virtio/virtio_net"] {
		m.virtioNetProbeLocked(d)
	}
}

// virtioNetProbeLocked is virtnet_probe: the netdev, then the bind event.
func (m *Model) virtioNetProbeLocked(d *ccwDev) {
	d.netdev = m.newLinkLocked(d.mac, nil, d)
	m.emitLocked("bind", d.devPath()+"/"+d.virtioName(), "virtio", "DRIVER", "virtio_net")
}

// virtioOfflineLocked is virtio_ccw_offline: the virtio device and its
// netdev go away (a MAC set on it is lost).
func (m *Model) virtioOfflineLocked(d *ccwDev) {
	if d.netdev != 0 {
		m.removeLinkLocked(d.netdev)
		d.netdev = 0
		m.emitLocked("unbind", d.devPath()+"/"+d.virtioName(), "virtio", "DRIVER", "virtio_net")
	}
	if d.vdev >= 0 {
		m.emitLocked("remove", d.devPath()+"/"+d.virtioName(), "virtio")
		delete(m.virtioIdx, d.vdev)
		d.vdev = -1
	}
	d.online = false
}
