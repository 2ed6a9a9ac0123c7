// Package probewire is what the guest probe (guest/dpmprobe) prints and
// the host-side tests (vm) read: one definition for both programs.
package probewire

// RaceProc is one process of a probe race (dpmprobe race).
type RaceProc struct {
	Args    []string `json:"args"`
	StartMS float64  `json:"start_ms"` // from the common release to exec
	EndMS   float64  `json:"end_ms"`   // from the common release to exit
	Exit    int      `json:"exit"`     // -1: could not start or was killed
	Output  string   `json:"output"`   // stdout and stderr, interleaved
}
