package apply

// Writes that can block in the kernel, and the channel subsystem's settle.

import (
	"context"
	"errors"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/ccw"
	"github.com/dpm-guest-image-tools/dpm-netconf/internal/errno"
)

// slowWrite makes a kernel write that can block (it waits for channel
// I/O or for locks an online in flight holds) through the Writer that
// outlives our deadline, so that the caller regains control in time and the
// kernel's work is not aborted.
func (w *worker) slowWrite(ctx context.Context, attr, file, value string) error {
	w.set(func() { w.inFlight, w.slowCall = true, "a write of "+value+" to "+file })
	err := w.cfg.Slow.Write(ctx, file, value)
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return err // the Writer gave up waiting: still under way, the report says so
	}
	w.set(func() { w.inFlight = false })
	if err != nil {
		return &ccw.AttrError{Step: attr, Device: w.busID(), File: file, Value: value, Err: err}
	}
	return nil
}

// settle waits for the channel subsystem to finish probing freed devices
// (cio_settle waits uninterruptibly). It is a barrier, not a step: if it
// fails, the devices still show up, and their kernel events wake us.
func (w *worker) settle(ctx context.Context) error {
	if err := w.cfg.Slow.Write(ctx, ccw.CIOSettle, "1"); err != nil && ctx.Err() == nil {
		w.cfg.Log.Debugf("%s: settle: %s", w.busID(), errno.Words(err))
	}
	return nil
}
