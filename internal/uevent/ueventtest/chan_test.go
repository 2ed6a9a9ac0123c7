package ueventtest

import (
	"testing"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
)

func TestChan(t *testing.T) {
	c := NewChan(1)
	if !c.Send(uevent.Event{Action: "add"}) || c.Send(uevent.Event{Action: "change"}) {
		t.Error("a Chan of 1 must take one event and drop the next")
	}
	if e := <-c.Events(); e.Action != "add" {
		t.Errorf("got %+v", e)
	}
	c.Close()
	if c.Send(uevent.Event{}) {
		t.Error("send after close")
	}
	if _, ok := <-c.Events(); ok {
		t.Error("events open after close")
	}
}
