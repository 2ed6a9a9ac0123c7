package kernelmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/sysfs"
)

var (
	_ sysfs.FS     = (*Model)(nil)
	_ link.Netlink = (*Model)(nil)
)

const (
	grp     = "/sys/bus/ccwgroup/drivers/qeth/group"
	g1      = "/sys/bus/ccwgroup/devices/0.0.0001/"
	ccw     = "/sys/bus/ccw/devices/"
	members = "0.0.0001,0.0.0002,0.0.0003"
)

// wantErrno checks that err carries want (0: no error).
func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %s", what, err, unix.ErrnoName(want))
	}
}

func write(m *Model, file, value string) error { return m.WriteFile(file, []byte(value+"\n")) }

func read(t *testing.T, m *Model, file string) string {
	t.Helper()
	v, err := sysfs.ReadString(m, file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return v
}

// eventually polls cond for up to two seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// osa returns a model with an OSA triplet 0.0.0001-3 on CHPID 0a and the
// given modules loaded.
func osa(mods ...string) *Model {
	m := New()
	m.AddOSA("0.0.0001", "0a")
	m.LoadModules(mods...)
	return m
}

// grouped returns a model with the triplet grouped and layer2=1.
func grouped(t *testing.T) *Model {
	t.Helper()
	m := osa("ccwgroup", "qeth", "qeth_l2", "qeth_l3")
	if err := write(m, grp, members); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModules(t *testing.T) {
	const source = "kernel/module/main.c (load_module, resolve_symbol_wait, module_patient_check_exists, do_init_module)"
	ko := func(name string) string {
		return "/lib/modules/6.1.0-test-s390x/kernel/drivers/s390/net/" + name + ".ko"
	}

	t.Run("missing dependency is an unknown symbol", func(t *testing.T) {
		m := New()
		wantErrno(t, source+": qeth without ccwgroup", m.Insmod(ko("qeth")), unix.ENOENT)
		if m.Exists("/sys/module/qeth") || m.Loaded("qeth") {
			t.Error("a module that failed to load is present")
		}
	})

	t.Run("live module is EEXIST", func(t *testing.T) {
		m := New()
		wantErrno(t, "insmod ccwgroup", m.Insmod("/x/ccwgroup.ko"), 0)
		wantErrno(t, source+": insmod ccwgroup again", m.Insmod("/x/ccwgroup.ko"), unix.EEXIST)
		if !m.Loaded("ccwgroup") || read(t, m, "/sys/module/ccwgroup/initstate") != "live" {
			t.Error("ccwgroup not live")
		}
	})

	// Two loads of one module at once: 6.1 answers the second EEXIST once
	// the first made it live; 6.5+ (Debian 13's 6.12) joins the second to
	// the first and gives it the first's answer (idempotent_init_module).
	for _, tc := range []struct {
		kernel Kernel
		second unix.Errno
	}{{Linux61, unix.EEXIST}, {Linux612, 0}} {
		t.Run("load in flight, "+tc.kernel.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := New()
				m.Kernel = tc.kernel
				m.LoadDelay = 100 * time.Millisecond
				first := make(chan error, 1)
				go func() { first <- m.Insmod(ko("ccwgroup")) }()
				synctest.Wait()
				if s := read(t, m, "/sys/module/ccwgroup/initstate"); s != "coming" {
					t.Fatalf("initstate %q, want coming", s)
				}
				start := time.Now()
				wantErrno(t, "kernel/module/main.c: a second load of ccwgroup on "+tc.kernel.String(), m.Insmod(ko("ccwgroup")), tc.second)
				if time.Since(start) < 100*time.Millisecond {
					t.Error("the second load did not wait for the first")
				}
				wantErrno(t, "the first load", <-first, 0)
				wantErrno(t, "a load once it is live", m.Insmod(ko("ccwgroup")), unix.EEXIST)
			})
		})
	}

	t.Run("name from the file: .ko stripped, - is _", func(t *testing.T) {
		m := New()
		m.LoadModules("ccwgroup", "qeth")
		wantErrno(t, "insmod qeth-l3.ko", m.Insmod(ko("qeth-l3")), 0)
		if !m.Loaded("qeth_l3") {
			t.Errorf("%s: qeth-l3.ko did not load qeth_l3", source)
		}
	})

	t.Run("coming for LoadDelay, then init registers drivers and binds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { // fake clock: the waits below are exact
			m := osa("ccwgroup")
			m.LoadDelay = 100 * time.Millisecond
			events := m.Subscribe(64)
			done := make(chan error, 2)
			go func() { done <- m.Insmod(ko("qeth")) }()
			eventually(t, "/sys/module/qeth appears", func() bool { return m.Exists("/sys/module/qeth") })
			if s := read(t, m, "/sys/module/qeth/initstate"); s != "coming" {
				t.Errorf("%s: initstate %q while loading, want coming", source, s)
			}
			if m.Exists(grp) || m.Exists("/sys/bus/ccwgroup/drivers/qeth") {
				t.Error("qeth's driver is registered before its init ran")
			}
			if _, err := m.ReadLink(ccw + "0.0.0001/driver"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("device bound before qeth's init: %v", err)
			}
			wantErrno(t, "group while qeth is coming", write(m, grp, members), unix.ENOENT)
			// A second load of a coming module waits for it, then finds it.
			start := time.Now()
			go func() { done <- m.Insmod(ko("qeth")) }()
			// A module needing a coming one waits for it (resolve_symbol_wait).
			l3 := make(chan error, 1)
			go func() { l3 <- m.Insmod(ko("qeth_l3")) }()
			errs := []error{<-done, <-done}
			if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), unix.EEXIST) {
				t.Errorf("%s: two loads of qeth: %v, want one success and one EEXIST", source, errs)
			}
			if time.Since(start) < 50*time.Millisecond {
				t.Error("the second load did not wait for the coming module")
			}
			wantErrno(t, source+": qeth_l3 while qeth is coming", <-l3, 0)
			if s := read(t, m, "/sys/module/qeth/initstate"); s != "live" {
				t.Errorf("initstate %q after load, want live", s)
			}
			if !m.Exists(grp) {
				t.Error("no group file after qeth loaded")
			}
			if l, err := m.ReadLink(ccw + "0.0.0001/driver"); err != nil || path.Base(l) != "qeth" {
				t.Errorf("driver link %q, %v", l, err)
			}
			// The module's own uevent comes after its drivers' (delayed until
			// init has finished, since 5.11).
			var got []string
			for len(events.Events()) > 0 {
				e := <-events.Events()
				if e.Subsystem == "module" || e.Subsystem == "drivers" {
					got = append(got, e.Action+" "+e.DevPath)
				}
			}
			want := []string{"add /bus/ccw/drivers/qeth", "add /bus/ccwgroup/drivers/qeth", "add /module/qeth", "add /module/qeth_l3"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: events %q, want %q", source, got, want)
			}
		})
	})

	t.Run("LoadModules is instant and binds", func(t *testing.T) {
		m := New()
		m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
		if _, err := m.ReadDir(ccw + "0.0.0010/virtio0/net"); err == nil {
			t.Error("a netdev without virtio_net")
		}
		m.LoadModules("virtio_net")
		if !m.Exists("/sys/bus/virtio/drivers/virtio_net") {
			t.Error("virtio_net's driver is not registered")
		}
		if names, err := m.ReadDir(ccw + "0.0.0010/virtio0/net"); err != nil || len(names) != 1 {
			t.Errorf("virtio netdev %v, %v", names, err)
		}
	})
}

func TestLinks(t *testing.T) {
	// drivers/s390/cio/device.c (ccw bus), ccwgroup.c
	// __ccwgroup_create_symlinks, net/core/net-sysfs.c (/sys/class/net).
	m := grouped(t)
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	m.LoadModules("virtio_net")
	if err := write(m, g1+"online", "1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ source, link, want string }{
		{"drivers/base/core.c (bus device link)", ccw + "0.0.0002", "../../../devices/css0/0.0.0001/0.0.0002"},
		{"drivers/base/bus.c (driver link)", ccw + "0.0.0001/driver", "../../../../bus/ccw/drivers/qeth"},
		{"drivers/base/bus.c (driver link)", ccw + "0.0.0010/driver", "../../../../bus/ccw/drivers/virtio_ccw"},
		{"drivers/s390/cio/ccwgroup.c", ccw + "0.0.0003/group_device", "../../../qeth/0.0.0001"},
		{"drivers/s390/cio/ccwgroup.c", g1 + "cdev1", "../../css0/0.0.0001/0.0.0002"},
		{"drivers/base/bus.c (driver link)", g1 + "driver", "../../../bus/ccwgroup/drivers/qeth"},
		{"net/core/net-sysfs.c", "/sys/class/net/eth0", "../../devices/css0/0.0.0003/0.0.0010/virtio0/net/eth0"},
		{"net/core/net-sysfs.c", "/sys/class/net/eth1", "../../devices/qeth/0.0.0001/net/eth1"},
	} {
		if got, err := m.ReadLink(tc.link); err != nil || got != tc.want {
			t.Errorf("%s: readlink %s = %q, %v; want %q", tc.source, tc.link, got, err, tc.want)
		}
	}
	// Paths through links resolve physically.
	if v := read(t, m, ccw+"0.0.0002/../chpids"); !strings.HasPrefix(v, "0a ") {
		t.Errorf("chpids through the bus link: %q", v)
	}
	if v := read(t, m, ccw+"0.0.0002/group_device/cdev0/online"); v != "1" {
		t.Errorf("member online through group_device/cdev0: %q", v)
	}
	if v := read(t, m, "/sys/class/net/eth1/address"); v != "00:0a:00:00:00:01" {
		t.Errorf("address through /sys/class/net: %q", v)
	}
	// A missing link is ENOENT in a *fs.PathError; another object EINVAL.
	_, err := m.ReadLink(ccw + "0.0.0010/group_device")
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Errorf("readlink of a missing link: %#v", err)
	}
	_, err = m.ReadLink(g1 + "online")
	wantErrno(t, "readlink of an attribute", err, unix.EINVAL)
	_, err = m.ReadFile(g1 + "net")
	wantErrno(t, "read of a directory", err, unix.EISDIR)
	_, err = m.ReadFile(g1 + "ungroup")
	wantErrno(t, "read of a write-only attribute", err, unix.EACCES)
	wantErrno(t, "write of a read-only attribute", write(m, g1+"state", "x"), unix.EACCES)
	wantErrno(t, "write of a missing file", write(m, g1+"nonsense", "1"), unix.ENOENT)
}

func TestGroup(t *testing.T) {
	const source = "drivers/s390/cio/ccwgroup.c ccwgroup_create_dev, group_store"
	t.Run("absent until qeth's driver is registered", func(t *testing.T) {
		m := osa("ccwgroup")
		wantErrno(t, source, write(m, grp, members), unix.ENOENT)
		if m.Exists(grp) {
			t.Error("group file without qeth")
		}
		m.LoadModules("qeth")
		wantErrno(t, source, write(m, grp, members), 0)
		if !m.Exists(g1 + "online") {
			t.Error("the group does not exist when the write returned")
		}
		if l, err := m.ReadLink(ccw + "0.0.0002/group_device"); err != nil || path.Base(l) != "0.0.0001" {
			t.Errorf("group_device %q, %v", l, err)
		}
	})
	for _, tc := range []struct {
		name  string
		setup func(m *Model)
		value string
		want  unix.Errno
	}{
		{"three ids", nil, members, 0},
		{"upper-case hex, short devno", nil, "0.0.1,0.0.2,0.0.0003", 0},
		{"two ids", nil, "0.0.0001,0.0.0002", unix.EINVAL},
		{"four ids", nil, members + ",0.0.0004", unix.EINVAL},
		{"trailing comma", nil, members + ",", unix.EINVAL},
		{"malformed id", nil, "0.0.0001,0.0.0002,zz", unix.EINVAL},
		{"missing member", nil, "0.0.0001,0.0.0002,0.0.0009", unix.EINVAL},
		{"cio_ignored member", func(m *Model) { m.Ignore("0.0.0003") }, members, unix.EINVAL},
		{"member of no driver", func(m *Model) { m.AddCCW("0.0.0009", "3088/08", "0a") }, "0.0.0001,0.0.0002,0.0.0009", unix.EINVAL},
		{"first member of no driver", func(m *Model) { m.AddCCW("0.0.0009", "3088/08", "0a") }, "0.0.0009,0.0.0001,0.0.0002", unix.EINVAL},
		{"virtio members", func(m *Model) {
			for _, id := range []string{"0.0.0011", "0.0.0012", "0.0.0013"} {
				m.AddVirtioNet(id, "52:54:00:00:00:11")
			}
		}, "0.0.0011,0.0.0012,0.0.0013", unix.EINVAL},
		{"mixed OSD and IQD", func(m *Model) { m.AddCCW("0.0.0009", "1731/05", "0a") }, "0.0.0001,0.0.0002,0.0.0009", unix.EINVAL},
		{"member already grouped", func(m *Model) {
			m.AddOSA("0.0.0004", "0a")
			write(m, grp, "0.0.0004,0.0.0005,0.0.0003")
		}, members, unix.EINVAL},
		{"same member twice", nil, "0.0.0001,0.0.0002,0.0.0001", unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := osa("ccwgroup", "qeth")
			if tc.setup != nil {
				tc.setup(m)
			}
			wantErrno(t, source+": "+tc.value, write(m, grp, tc.value), tc.want)
		})
	}
}

func TestQethAttributes(t *testing.T) {
	const source = "drivers/s390/net/qeth_core_sys.c qeth_dev_layer2_store, qeth_dev_portno_store, qeth_dev_state_show"
	for _, tc := range []struct {
		name   string
		online bool
		mods   []string
		attr   string
		value  string
		want   unix.Errno
		after  string
	}{
		{"layer2=1", false, nil, "layer2", "1", 0, "1"},
		{"layer2=0", false, nil, "layer2", "0", 0, "0"},
		{"layer2 hex", false, nil, "layer2", "0x1", 0, "1"},
		{"layer2=2", false, nil, "layer2", "2", unix.EINVAL, "-1"},
		{"layer2 malformed", false, nil, "layer2", "yes", unix.EINVAL, "-1"},
		{"layer2=1 without qeth_l2", false, []string{"ccwgroup", "qeth"}, "layer2", "1", unix.EINVAL, "-1"},
		{"layer2 online", true, nil, "layer2", "0", unix.EPERM, "1"},
		{"layer2 online, current value", true, nil, "layer2", "1", unix.EPERM, "1"},
		{"portno=1", false, nil, "portno", "1", 0, "1"},
		{"portno beyond the adapter's ports", false, nil, "portno", "2", unix.EINVAL, "0"},
		{"portno beyond QETH_MAX_PORTNO", false, nil, "portno", "10", unix.EINVAL, "0"},
		{"portno malformed", false, nil, "portno", "one", unix.EINVAL, "0"},
		{"portno online", true, nil, "portno", "0", unix.EPERM, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := osa(append([]string{"ccwgroup", "qeth", "qeth_l2", "qeth_l3"}, tc.mods...)...)
			if tc.mods != nil {
				m = osa(tc.mods...)
			}
			if err := write(m, grp, members); err != nil {
				t.Fatal(err)
			}
			if tc.online {
				if err := write(m, g1+"online", "1"); err != nil {
					t.Fatal(err)
				}
			}
			wantErrno(t, source+": "+tc.attr+"="+tc.value, write(m, g1+tc.attr, tc.value), tc.want)
			if got := read(t, m, g1+tc.attr); got != tc.after {
				t.Errorf("%s reads %s afterwards, want %s", tc.attr, got, tc.after)
			}
		})
	}

	t.Run("current value is a no-op without the discipline module", func(t *testing.T) {
		m := osa("ccwgroup", "qeth")
		m.SetGroupState("0.0.0001", 1, 0, false)
		wantErrno(t, source, write(m, g1+"layer2", "1"), 0)
	})

	t.Run("an online in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { // fake clock: the waits below are exact
			m := grouped(t)
			m.OnlineDelay = 200 * time.Millisecond
			done := make(chan error, 1)
			go func() { done <- write(m, g1+"online", "1") }()
			time.Sleep(50 * time.Millisecond)
			// 6.x has only DOWN and SOFTSETUP: an online in flight reads DOWN.
			if s, o := read(t, m, g1+"state"), read(t, m, g1+"online"); s != "DOWN" || o != "0" {
				t.Errorf("%s: in flight state=%s online=%s, want DOWN and 0", source, s, o)
			}
			// The writer waits for the card's mutexes, then finds it online.
			start := time.Now()
			wantErrno(t, source+": layer2 during online", write(m, g1+"layer2", "0"), unix.EPERM)
			wantErrno(t, source+": portno during online", write(m, g1+"portno", "1"), unix.EPERM)
			if time.Since(start) < 100*time.Millisecond {
				t.Error("layer2 did not wait for the online in flight")
			}
			wantErrno(t, "online", <-done, 0)
			if s := read(t, m, g1+"state"); s != "SOFTSETUP" {
				t.Errorf("state %s when online", s)
			}
		})
	})
}

func TestGroupOnline(t *testing.T) {
	const source = "drivers/s390/cio/ccwgroup.c ccwgroup_online_store, ccwgroup_set_online, ccwgroup_set_offline, ccwgroup_ungroup_store"
	t.Run("values", func(t *testing.T) {
		m := grouped(t)
		wantErrno(t, source+": online=2", write(m, g1+"online", "2"), unix.EINVAL)
		wantErrno(t, source+": online=yes", write(m, g1+"online", "yes"), unix.EINVAL)
		wantErrno(t, source+": offline when offline", write(m, g1+"online", "0"), unix.EINVAL)
		wantErrno(t, source+": online", write(m, g1+"online", "1"), 0)
		wantErrno(t, source+": online when online", write(m, g1+"online", "1"), unix.EINVAL)
		wantErrno(t, source+": ungroup when online", write(m, g1+"ungroup", "1"), unix.EINVAL)
		wantErrno(t, source+": offline", write(m, g1+"online", "0"), 0)
		wantErrno(t, source+": online=0x1", write(m, g1+"online", "0x1"), 0)
	})

	t.Run("netdev at the first online, kept", func(t *testing.T) {
		m := grouped(t)
		if _, err := m.ReadDir(g1 + "net"); err == nil {
			t.Error("a netdev before the first online")
		}
		write(m, g1+"online", "1")
		names, err := m.ReadDir(g1 + "net")
		if err != nil || len(names) != 1 {
			t.Fatalf("netdev %v, %v", names, err)
		}
		if read(t, m, ccw+"0.0.0003/online") != "1" {
			t.Error("members not online with the group (qeth_hardsetup_card)")
		}
		write(m, g1+"online", "0")
		if again, _ := m.ReadDir(g1 + "net"); !reflect.DeepEqual(again, names) {
			t.Errorf("netdev %v after offline, want %v", again, names)
		}
		if read(t, m, g1+"state") != "DOWN" || read(t, m, ccw+"0.0.0001/online") != "0" {
			t.Error("card or members still online after offline")
		}
	})

	for _, tc := range []struct {
		name, cutype string
		mods         []string
		want         unix.Errno
		layer2       string
	}{
		{"OSA picks layer 2", "1731/01", []string{"qeth_l2"}, 0, "1"},
		{"OSA without qeth_l2", "1731/01", []string{"qeth_l3"}, unix.EINVAL, "-1"},
		{"HiperSockets picks layer 3", "1731/05", []string{"qeth_l3"}, 0, "0"},
		{"HiperSockets without qeth_l3", "1731/05", []string{"qeth_l2"}, unix.EINVAL, "-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// drivers/s390/net/qeth_core_main.c qeth_core_set_online
			m := New()
			for i := 1; i <= 3; i++ {
				m.AddCCW(fmt.Sprintf("0.0.000%d", i), tc.cutype, "0a")
			}
			m.LoadModules(append([]string{"ccwgroup", "qeth"}, tc.mods...)...)
			write(m, grp, members)
			wantErrno(t, "qeth_core_main.c qeth_core_set_online", write(m, g1+"online", "1"), tc.want)
			if got := read(t, m, g1+"layer2"); got != tc.layer2 {
				t.Errorf("layer2 %s, want %s", got, tc.layer2)
			}
		})
	}

	t.Run("ungroup during an online in flight", func(t *testing.T) {
		m := grouped(t)
		m.OnlineDelay = 100 * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- write(m, g1+"online", "1") }()
		time.Sleep(30 * time.Millisecond)
		wantErrno(t, source+": ungroup while onoff is held", write(m, g1+"ungroup", "1"), unix.EAGAIN)
		wantErrno(t, "online", <-done, 0)
		write(m, g1+"online", "0")
		wantErrno(t, source+": ungroup", write(m, g1+"ungroup", "1"), 0)
		if m.Exists(g1) || m.Exists(ccw+"0.0.0001/group_device") {
			t.Error("group left after ungroup")
		}
		wantErrno(t, "group again", write(m, grp, members), 0)
	})
}

// TestRaceOnlineWrites: two writers set the same group online at once
// (drivers/s390/cio/ccwgroup.c: the device lock serialises them, the
// second finds the group online). Exactly one succeeds.
func TestRaceOnlineWrites(t *testing.T) {
	m := grouped(t)
	m.OnlineDelay = 20 * time.Millisecond
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = write(m, g1+"online", "1") }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINVAL):
			t.Errorf("unexpected %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d writers succeeded: %v", ok, errs)
	}
}

// TestManyActors runs loaders, groupers, online and attribute writers,
// readers, renames and MAC changes at once, for -race and deadlocks.
func TestManyActors(t *testing.T) {
	m := New()
	m.LoadDelay = 5 * time.Millisecond
	m.OnlineDelay = 2 * time.Millisecond
	m.AutoOnlineDelay = time.Millisecond
	ev := m.Subscribe(16)
	defer ev.Close()
	for i := 0; i < 8; i++ {
		m.AddOSA(fmt.Sprintf("0.0.%04x", 0x100+4*i), "0a")
		m.AddVirtioNet(fmt.Sprintf("0.0.%04x", 0x200+i), fmt.Sprintf("52:54:00:00:00:%02x", i))
	}
	m.Ignore("0.0.0200", "0.0.0201")
	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	// Loaders in every order: udev, 95zdev and dpm-netconf at once.
	for _, mod := range []string{"qeth_l2", "ccwgroup", "qeth", "llc", "stp", "bridge", "virtio_net", "failover", "net_failover", "qeth", "ccwgroup"} {
		run(func() {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if err := m.Insmod("/k/" + mod + ".ko"); err == nil || errors.Is(err, unix.EEXIST) {
					return
				}
			}
			t.Errorf("%s not loaded", mod)
		})
	}
	run(func() { write(m, "/proc/cio_ignore", "free 0.0.0200-0.0.0201"); write(m, "/proc/cio_settle", "1") })
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("0.0.%04x", 0x100+4*i)
		dir := "/sys/bus/ccwgroup/devices/" + id + "/"
		for j := 0; j < 2; j++ {
			run(func() {
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					write(m, grp, id+","+offset(id, 1)+","+offset(id, 2))
					write(m, dir+"portno", "1")
					if write(m, dir+"online", "1") == nil {
						break
					}
					if v, _ := sysfs.ReadString(m, "/sys/bus/ccw/devices/"+id+"/online"); v == "1" {
						break
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		run(func() {
			for k := 0; k < 50; k++ {
				m.ReadDir("/sys/class/net")
				m.ReadFile(dir + "state")
				m.ReadLink("/sys/bus/ccw/devices/" + id + "/group_device")
				if idx := k + 2; k%5 == 0 {
					m.SetHardwareAddr(idx, net.HardwareAddr{0x02, 0, 0, 0, byte(i), byte(k)})
					m.Rename(fmt.Sprintf("eth%d", k%8), fmt.Sprintf("enc%d", k))
				}
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: actors did not finish")
	}
	for i := 0; i < 8; i++ {
		if id := fmt.Sprintf("0.0.%04x", 0x100+4*i); read(t, m, "/sys/bus/ccwgroup/devices/"+id+"/online") != "1" {
			t.Errorf("%s not online", id)
		}
	}
}

func TestCCWOnline(t *testing.T) {
	const source = "drivers/s390/cio/device.c online_store; drivers/s390/virtio/virtio_ccw.c virtio_ccw_probe, virtio_ccw_auto_online"
	t.Run("drivers", func(t *testing.T) {
		m := New()
		m.AddCCW("0.0.0009", "3088/08", "0a")
		m.AddOSA("0.0.0001", "0a")
		m.LoadModules("ccwgroup", "qeth")
		wantErrno(t, source+": no driver", write(m, ccw+"0.0.0009/online", "1"), unix.EINVAL)
		wantErrno(t, source+": qeth's CCW driver has no set_online", write(m, ccw+"0.0.0001/online", "1"), unix.EINVAL)
		wantErrno(t, source+": missing device", write(m, ccw+"0.0.0019/online", "1"), unix.ENOENT)
	})

	t.Run("virtio auto-online after settle", func(t *testing.T) {
		m := New()
		m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
		m.Ignore("0.0.0010")
		m.LoadModules("virtio_net")
		m.AutoOnlineDelay = 100 * time.Millisecond
		wantErrno(t, "free", write(m, "/proc/cio_ignore", "free 0.0.0010"), 0)
		if m.Exists(ccw + "0.0.0010") {
			t.Error("visible before settle")
		}
		wantErrno(t, "settle", write(m, "/proc/cio_settle", "1"), 0)
		if read(t, m, ccw+"0.0.0010/online") != "0" {
			t.Errorf("%s: online right after settle", source)
		}
		if l, err := m.ReadLink(ccw + "0.0.0010/driver"); err != nil || path.Base(l) != "virtio_ccw" {
			t.Errorf("driver %q, %v", l, err)
		}
		wantErrno(t, source+": online during auto-online", write(m, ccw+"0.0.0010/online", "1"), unix.EAGAIN)
		eventually(t, "auto-online", func() bool { return read(t, m, ccw+"0.0.0010/online") == "1" })
		if names, err := m.ReadDir(ccw + "0.0.0010/virtio0/net"); err != nil || len(names) != 1 {
			t.Errorf("netdev %v, %v", names, err)
		}
		wantErrno(t, source+": online when online", write(m, ccw+"0.0.0010/online", "1"), unix.EINVAL)
		wantErrno(t, source+": offline", write(m, ccw+"0.0.0010/online", "0"), 0)
		if m.Exists(ccw + "0.0.0010/virtio0") {
			t.Error("virtio device left after offline")
		}
		wantErrno(t, source+": offline when offline", write(m, ccw+"0.0.0010/online", "0"), unix.EINVAL)
		wantErrno(t, source+": online=2", write(m, ccw+"0.0.0010/online", "2"), unix.EINVAL)
		wantErrno(t, source+": online", write(m, ccw+"0.0.0010/online", "1"), 0)
	})
}

func TestSetMAC(t *testing.T) {
	const source = "net/ethernet/eth.c eth_prepare_mac_addr_change; drivers/s390/net/qeth_l2_main.c qeth_l2_set_mac_address, qeth_l2_setdelmac_makerc"
	for _, tc := range []struct {
		name   string
		old    bool
		target string // "osa", "osa2" (same CHPID and port as osa), "virtio"
		mac    string
		fail   error
		want   unix.Errno
	}{
		{"locally administered", false, "osa", "02:00:00:00:00:01", nil, 0},
		{"current address: the adapter is not asked", false, "osa", "02:00:00:00:00:aa", unix.EIO, 0},
		{"own universal address again", false, "osa2", "00:0a:00:00:00:04", nil, 0},
		{"zero", false, "osa", "00:00:00:00:00:00", nil, unix.EADDRNOTAVAIL},
		{"multicast", false, "osa", "03:00:00:00:00:01", nil, unix.EADDRNOTAVAIL},
		{"not authorised", false, "osa", "00:11:22:33:44:55", nil, unix.EADDRNOTAVAIL},
		{"not authorised, <= 5.6", true, "osa", "00:11:22:33:44:55", nil, unix.EPERM},
		{"duplicate on the port", false, "osa2", "02:00:00:00:00:aa", nil, unix.EADDRINUSE},
		{"duplicate on the port, <= 5.6", true, "osa2", "02:00:00:00:00:aa", nil, unix.EEXIST},
		{"table full", false, "osa", "02:00:00:00:00:02", unix.ENOSPC, unix.ENOSPC},
		{"virtio takes any unicast", false, "virtio", "00:11:22:33:44:55", nil, 0},
		{"virtio multicast", false, "virtio", "01:11:22:33:44:55", nil, unix.EADDRNOTAVAIL},
		{"virtio injected", false, "virtio", "02:11:22:33:44:55", unix.EIO, unix.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := osa("ccwgroup", "qeth", "qeth_l2", "virtio_net")
			m.OldMACErrnos = tc.old
			m.AddOSA("0.0.0004", "0a")
			m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
			m.SetGroupState("0.0.0001", 1, 0, true)
			m.SetGroupState("0.0.0004", 1, 0, true)
			if err := m.SetHardwareAddr(groupIndex(t, m, "0.0.0001"), net.HardwareAddr{2, 0, 0, 0, 0, 0xaa}); err != nil {
				t.Fatal(err)
			}
			id := map[string]string{"osa": "0.0.0001", "osa2": "0.0.0004", "virtio": "0.0.0010"}[tc.target]
			if tc.fail != nil {
				m.Fail("mac", id, tc.fail)
			}
			var idx int
			if tc.target == "virtio" {
				idx = netIndex(t, m, ccw+id+"/virtio0/net")
			} else {
				idx = groupIndex(t, m, id)
			}
			wantErrno(t, source+": "+tc.mac, m.SetHardwareAddr(idx, mustMAC(tc.mac)), tc.want)
			l, _ := m.LinkByIndex(idx)
			if changed := l.MAC.String() == tc.mac; changed != (tc.want == 0) {
				t.Errorf("MAC %s after the change", l.MAC)
			}
		})
	}
	m := New()
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	m.LoadModules("virtio_net")
	wantErrno(t, "net/core/rtnetlink.c do_setlink: short address", m.SetHardwareAddr(2, net.HardwareAddr{2, 0, 0}), unix.EINVAL)
	wantErrno(t, "no such link", m.SetHardwareAddr(99, mustMAC("02:00:00:00:00:01")), unix.ENODEV)
}

// TestSetMACCurrentAddress: from 6.5 (Debian 13's 6.12) the core answers a
// request for the address the netdev has without asking the driver; 6.1
// asks virtio_net (and qeth_l2, which skips a registered address itself).
func TestSetMACCurrentAddress(t *testing.T) {
	const source = "net/core/dev.c dev_set_mac_address"
	for _, tc := range []struct {
		kernel Kernel
		want   unix.Errno
	}{
		{Linux61, unix.EIO},
		{Linux612, 0},
	} {
		t.Run(tc.kernel.String(), func(t *testing.T) {
			m := New()
			m.Kernel = tc.kernel
			m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
			m.LoadModules("virtio_net")
			idx := netIndex(t, m, ccw+"0.0.0010/virtio0/net")
			m.Fail("mac", "0.0.0010", unix.EIO) // the device refuses whatever it is asked
			wantErrno(t, source+": the current address on "+tc.kernel.String(), m.SetHardwareAddr(idx, mustMAC("52:54:00:00:00:10")), tc.want)
			wantErrno(t, "another address", m.SetHardwareAddr(idx, mustMAC("02:00:00:00:00:01")), unix.EIO)
		})
	}
}

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func netIndex(t *testing.T, m *Model, dir string) int {
	t.Helper()
	names, err := m.ReadDir(dir)
	if err != nil || len(names) != 1 {
		t.Fatalf("%s: %v, %v", dir, names, err)
	}
	var idx int
	fmt.Sscan(read(t, m, dir+"/"+names[0]+"/ifindex"), &idx)
	return idx
}

func groupIndex(t *testing.T, m *Model, id string) int {
	return netIndex(t, m, "/sys/bus/ccwgroup/devices/"+id+"/net")
}

func TestKmsg(t *testing.T) {
	const source = "kernel/printk/printk.c devkmsg_open, devkmsg_write, devkmsg_release; lib/ratelimit.c"
	m := New()
	f, _ := m.OpenKmsg()
	for i := 0; i < 12; i++ {
		if n, err := fmt.Fprintf(f, "<5>line %d\n", i); err != nil || n == 0 {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	g, _ := m.OpenKmsg() // a file of its own, a limit of its own
	g.Write([]byte("other file"))
	g.Close()
	f.Close()
	log := m.KernelLog()
	want := []string{"line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 9",
		"other file", "dpm-netconf: 2 output lines suppressed due to ratelimiting"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("%s:\n got %q\nwant %q", source, log, want)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("write after close")
	}

	m = New()
	m.DevkmsgOn = true
	f, _ = m.OpenKmsg()
	for i := 0; i < 12; i++ {
		fmt.Fprintf(f, "line %d", i)
	}
	f.Close()
	if n := len(m.KernelLog()); n != 12 {
		t.Errorf("%s: printk.devkmsg=on kept %d of 12", source, n)
	}
	_, err := f.Write(make([]byte, 2000))
	if err == nil {
		t.Error("oversized record accepted")
	}
}

func TestEvents(t *testing.T) {
	// lib/kobject_uevent.c, drivers/base/core.c device_add, bus.c
	// driver_bound; drivers/s390/net/qeth_core_main.c qeth_set_online
	// ("let user_space know that device is online": KOBJ_CHANGE);
	// net/core/dev.c dev_change_name (KOBJ_MOVE).
	m := New()
	m.AddOSA("0.0.0001", "0a")
	m.AddVirtioNet("0.0.0010", "52:54:00:00:00:10")
	m.Ignore("0.0.0001", "0.0.0002", "0.0.0003", "0.0.0010")
	m.LoadModules("ccwgroup", "qeth", "qeth_l2", "virtio_net")
	m.AutoOnlineDelay = 0
	c := m.Subscribe(100)
	write(m, "/proc/cio_ignore", "free 0.0.0001-0.0.0003,0.0.0010")
	write(m, "/proc/cio_settle", "1")
	eventually(t, "auto-online", func() bool { return read(t, m, ccw+"0.0.0010/online") == "1" })
	write(m, grp, members)
	write(m, g1+"online", "1")
	m.Rename("eth1", "enc1")
	c.Close()
	var got []string
	for e := range c.Events() {
		if e.Vars["ACTION"] != e.Action || e.Vars["DEVPATH"] != e.DevPath || e.Vars["SUBSYSTEM"] != e.Subsystem {
			t.Errorf("vars %v disagree with %+v", e.Vars, e)
		}
		s := e.Action + " " + e.DevPath + " " + e.Subsystem
		for _, k := range []string{"DRIVER", "INTERFACE", "DEVPATH_OLD"} {
			if v, ok := e.Vars[k]; ok {
				s += " " + k + "=" + v
			}
		}
		got = append(got, s)
	}
	want := []string{
		"add /devices/css0/0.0.0000 css",
		"add /devices/css0/0.0.0000/0.0.0001 ccw",
		"bind /devices/css0/0.0.0000/0.0.0001 ccw DRIVER=qeth",
		"add /devices/css0/0.0.0001 css",
		"add /devices/css0/0.0.0001/0.0.0002 ccw",
		"bind /devices/css0/0.0.0001/0.0.0002 ccw DRIVER=qeth",
		"add /devices/css0/0.0.0002 css",
		"add /devices/css0/0.0.0002/0.0.0003 ccw",
		"bind /devices/css0/0.0.0002/0.0.0003 ccw DRIVER=qeth",
		"add /devices/css0/0.0.0003 css",
		"add /devices/css0/0.0.0003/0.0.0010 ccw",
		"bind /devices/css0/0.0.0003/0.0.0010 ccw DRIVER=virtio_ccw",
		"add /devices/css0/0.0.0003/0.0.0010/virtio0 virtio",
		"add /devices/css0/0.0.0003/0.0.0010/virtio0/net/eth0 net INTERFACE=eth0",
		"bind /devices/css0/0.0.0003/0.0.0010/virtio0 virtio DRIVER=virtio_net",
		"add /devices/qeth/0.0.0001 ccwgroup",
		"bind /devices/qeth/0.0.0001 ccwgroup DRIVER=qeth",
		"add /devices/qeth/0.0.0001/net/eth1 net INTERFACE=eth1",
		"change /devices/qeth/0.0.0001 ccwgroup",
		"move /devices/qeth/0.0.0001/net/enc1 net INTERFACE=enc1 DEVPATH_OLD=/devices/qeth/0.0.0001/net/eth1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestSubscriberBufferFull(t *testing.T) {
	// lib/kobject_uevent.c: the kernel never waits for a listener.
	m := New()
	c := m.Subscribe(1)
	m.AddOSA("0.0.0001", "0a") // many events
	if n := len(c.Events()); n != 1 {
		t.Errorf("%d events buffered, want 1", n)
	}
}

func TestBeforeWrite(t *testing.T) {
	// Another actor (95zdev, udev) groups and sets the device online between
	// a read and the write: the write gets the kernel's answer for the new
	// state (drivers/s390/cio/ccwgroup.c ccwgroup_create_dev: EINVAL).
	m := osa("ccwgroup", "qeth", "qeth_l2")
	var acted atomic.Bool
	m.BeforeWrite = func(file, value string) {
		if file == grp && !acted.Swap(true) {
			write(m, grp, members)
			write(m, g1+"online", "1")
		}
	}
	if m.Exists(g1) {
		t.Fatal("grouped before")
	}
	wantErrno(t, "group after the other actor", write(m, grp, members), unix.EINVAL)
	want := []string{grp + " " + members, g1 + "online 1", grp + " " + members}
	if got := m.Writes(); !reflect.DeepEqual(got, want) {
		t.Errorf("writes %q, want %q", got, want)
	}
}

func TestCIOIgnore(t *testing.T) {
	// drivers/s390/cio/blacklist.c cio_ignore_write, cio_ignore_proc_seq_show
	m := New()
	m.AddOSA("0.0.0001", "0a")
	m.AddCCW("0.0.0009", "1731/01", "0a")
	m.Ignore("0.0.0001", "0.0.0002", "0.0.0003", "0.0.0009")
	if v := read(t, m, "/proc/cio_ignore"); v != "0.0.0001-0.0.0003\n0.0.0009" {
		t.Errorf("cio_ignore %q", v)
	}
	wantErrno(t, "blacklist.c: add", write(m, "/proc/cio_ignore", "nonsense"), unix.EINVAL)
	wantErrno(t, "blacklist.c: bad range", write(m, "/proc/cio_ignore", "free 0.0.0003-0.0.0001"), unix.EINVAL)
	wantErrno(t, "free all", write(m, "/proc/cio_ignore", "free all"), 0)
	write(m, "/proc/cio_settle", "1")
	if read(t, m, "/proc/cio_ignore") != "" || !m.Exists(ccw+"0.0.0009") {
		t.Error("free all left devices ignored")
	}
	m.NoCIOIgnore()
	if m.Exists("/proc/cio_ignore") || m.Exists("/proc/cio_settle") {
		t.Error("cio_ignore without it")
	}
}
