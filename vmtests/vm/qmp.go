package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// QMPArgs makes QEMU listen for QMP on a unix socket.
func QMPArgs(sock string) []string { return []string{"-qmp", "unix:" + sock + ",server=on,wait=off"} }

// Monitor is a QMP connection to a running QEMU: commands, and the
// DEVICE_DELETED events hot-unplug waits for.
type Monitor struct {
	mon     *qmp.SocketMonitor
	mu      sync.Mutex
	deleted map[string]chan struct{} // device id -> closed when QEMU deleted it
}

// DialQMP connects to QEMU's QMP socket (QMPArgs) and keeps reading its
// events.
func DialQMP(sock string) (*Monitor, error) {
	mon, err := qmp.NewSocketMonitor("unix", sock, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", sock, err)
	}
	if err := mon.Connect(); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", sock, err)
	}
	events, err := mon.Events(context.Background())
	if err != nil {
		_ = mon.Disconnect()
		return nil, fmt.Errorf("qmp %s events: %w", sock, err)
	}
	m := &Monitor{mon: mon, deleted: map[string]chan struct{}{}}
	// go-qemu's event channel is unbuffered: it must always be drained.
	go func() {
		for e := range events {
			if e.Event != "DEVICE_DELETED" {
				continue
			}
			if id, _ := e.Data["device"].(string); id != "" {
				// DeviceDel registered its waiter before the command.
				m.mu.Lock()
				c, ok := m.deleted[id]
				delete(m.deleted, id)
				m.mu.Unlock()
				if ok {
					close(c)
				}
			}
		}
	}()
	return m, nil
}

func (m *Monitor) deletedChan(id string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.deleted[id]
	if !ok {
		c = make(chan struct{})
		m.deleted[id] = c
	}
	return c
}

// Execute runs one QMP command.
func (m *Monitor) Execute(command string, args map[string]any) error {
	b, err := json.Marshal(qmp.Command{Execute: command, Args: args})
	if err != nil {
		return err
	}
	if _, err := m.mon.Run(b); err != nil {
		return fmt.Errorf("qmp %s %v: %w", command, args, err)
	}
	return nil
}

// DeviceAdd plugs a device in (device_add with QEMU's properties).
func (m *Monitor) DeviceAdd(props map[string]any) error { return m.Execute("device_add", props) }

// DeviceDel unplugs device id and waits until QEMU reports it deleted.
func (m *Monitor) DeviceDel(id string, timeout time.Duration) error {
	done := m.deletedChan(id)
	if err := m.Execute("device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("qmp: device %s not deleted within %v", id, timeout)
	}
}

// Close ends the connection.
func (m *Monitor) Close() error { return m.mon.Disconnect() }

// HMP runs a human monitor command (info registers, info jit) and returns
// its text.
func (m *Monitor) HMP(cmd string) (string, error) {
	b, err := json.Marshal(qmp.Command{Execute: "human-monitor-command", Args: map[string]any{"command-line": cmd}})
	if err != nil {
		return "", err
	}
	raw, err := m.mon.Run(b)
	if err != nil {
		return "", fmt.Errorf("qmp human-monitor-command %q: %w", cmd, err)
	}
	var r struct {
		Return string `json:"return"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("qmp human-monitor-command %q: %w", cmd, err)
	}
	return r.Return, nil
}
