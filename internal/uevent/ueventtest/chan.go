// Package ueventtest has a kernel-event source that tests and the kernel
// model feed themselves.
package ueventtest

import (
	"sync"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/uevent"
)

// Chan is a Source fed by its owner: tests and the kernel model inject
// events through it.
type Chan struct {
	mu     sync.Mutex
	ch     chan uevent.Event
	closed bool
}

// NewChan returns a uevent.Source with room for n undelivered events.
func NewChan(n int) *Chan { return &Chan{ch: make(chan uevent.Event, n)} }

// Send delivers an event unless the buffer is full or the source closed; it
// never blocks, as the kernel never waits for a listener.
func (c *Chan) Send(e uevent.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	select {
	case c.ch <- e:
		return true
	default:
		return false
	}
}

// uevent.Events implements Source.
func (c *Chan) Events() <-chan uevent.Event { return c.ch }

// Close implements uevent.Source.
func (c *Chan) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.ch)
	}
	return nil
}
