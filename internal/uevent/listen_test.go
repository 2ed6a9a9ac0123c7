package uevent

import (
	"os"
	"testing"
	"time"
)

// TestListenRealKernel asks this machine's kernel to repeat the loopback
// interface's uevent (writing "change" to its uevent file) and expects to
// read it from the socket.
func TestListenRealKernel(t *testing.T) {
	const trigger = "/sys/class/net/lo/uevent"
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: the uevent socket test must run")
		}
		t.Skip("needs root to write " + trigger + "; run: make unit as root (CI does)")
	}
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.WriteFile(trigger, []byte("change"), 0); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-l.Events():
			if !ok {
				t.Fatal("events closed")
			}
			if e.Action == "change" && e.Subsystem == "net" && e.Vars["INTERFACE"] == "lo" {
				return
			}
		case <-timeout:
			t.Fatal("no change event for lo within 5s")
		}
	}
}

func TestListenerCloseEndsEvents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the uevent socket; run: make unit as root (CI does)")
	}
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range l.Events() {
		}
		close(done)
	}()
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Events not closed by Close")
	}
}
