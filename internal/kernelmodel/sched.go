package kernelmodel

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing/synctest"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/link"
)

// A Scheduler makes the order in which goroutines act on the model a
// function of a seed: a deterministic scheduler for tests that run in a
// synctest bubble. Every entry into the model (a sysfs read or write, a
// netlink call, a module load) and every point where the model's own
// asynchronous work goes on (after a delay) is a turn: the goroutine waits
// there until the scheduler lets it go. The scheduler lets one go only when
// every other goroutine in the bubble is blocked (synctest.Wait), and picks
// it with its seeded generator among the waiting ones, ordered by what each
// is about to do. So, with the bubble's fake clock, the same seed gives the
// same interleaving of kernel operations.
//
// The Go runtime still chooses freely among goroutines that run between two
// turns without touching the model (and among ready select cases); those
// choices reach the model only through a turn, which is where the order is
// fixed.
type Scheduler struct {
	rng     *rand.Rand
	mu      sync.Mutex
	waiting []*turn
	picks   []string      // every turn let go, in order, with its rivals
	done    bool          // stopped: turns go on at once
	arrived chan struct{} // a goroutine is waiting at a turn
	stop    chan struct{}
	stopped chan struct{}
}

type turn struct {
	what    string
	release chan struct{}
}

// NewScheduler starts a scheduler in the calling goroutine's bubble; Stop
// ends it (before the bubble ends).
func NewScheduler(seed uint64) *Scheduler {
	s := &Scheduler{
		rng:     rand.New(rand.NewPCG(seed, 0x7e4e)),
		arrived: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go s.run()
	return s
}

// Stop ends the scheduler; goroutines that reach a turn afterwards go on
// at once.
func (s *Scheduler) Stop() {
	close(s.stop)
	<-s.stopped
}

func (s *Scheduler) wait(what string) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	t := &turn{what: what, release: make(chan struct{})}
	s.waiting = append(s.waiting, t)
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	<-t.release
}

func (s *Scheduler) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.arrived:
		case <-s.stop:
			s.releaseAll()
			return
		}
		for {
			// Everyone else is blocked: at a turn, asleep, or waiting on
			// a channel. Only now is the set of waiting turns complete.
			synctest.Wait()
			s.mu.Lock()
			if len(s.waiting) == 0 {
				s.mu.Unlock()
				break
			}
			slices.SortStableFunc(s.waiting, func(a, b *turn) int { return strings.Compare(a.what, b.what) })
			// Turns that do the very same thing as the same actor (two
			// workers of one apply reading the same file) go together:
			// their arrival order is the Go scheduler's, not the seed's,
			// and letting one of them go first would make the interleaving
			// depend on it. Together, they meet the same kernel state.
			i := s.rng.IntN(len(s.waiting))
			what := s.waiting[i].what
			whats := make([]string, len(s.waiting))
			for j, w := range s.waiting {
				whats[j] = w.what
			}
			s.picks = append(s.picks, fmt.Sprintf("%s  (of %q)", what, whats))
			var same []*turn
			s.waiting = slices.DeleteFunc(s.waiting, func(t *turn) bool {
				if t.what == what {
					same = append(same, t)
					return true
				}
				return false
			})
			s.mu.Unlock()
			for _, t := range same {
				close(t.release)
			}
		}
	}
}

// Picks returns the turns let go so far, in order: a replay's trace.
func (s *Scheduler) Picks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.picks)
}

func (s *Scheduler) releaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	for _, t := range s.waiting {
		close(t.release)
	}
	s.waiting = nil
}

// turn waits for the model's scheduler, if it has one (Model.Sched). who
// is the actor (As), "" for the model used directly.
func (m *Model) turn(who, what string) {
	if m.Sched != nil {
		m.Sched.wait(who + ": " + what)
	}
}

// kernelActor names the model's own asynchronous work in turns.
const kernelActor = "~kernel"

// Actor is the model as one actor of a test uses it: the same kernel, with
// the actor's name on each of its turns, so that the scheduler tells two
// actors doing the same thing apart (two applies writing the same file)
// by name rather than by which arrived first.
type Actor struct {
	*Model
	name string
}

// As returns the model as the named actor sees it.
func (m *Model) As(name string) Actor { return Actor{m, name} }

func (a Actor) ReadFile(name string) ([]byte, error)     { return a.readFile(a.name, name) }
func (a Actor) ReadDir(name string) ([]string, error)    { return a.readDir(a.name, name) }
func (a Actor) Exists(name string) bool                  { return a.exists(a.name, name) }
func (a Actor) ReadLink(name string) (string, error)     { return a.readLink(a.name, name) }
func (a Actor) WriteFile(name string, data []byte) error { return a.writeFile(a.name, name, data) }
func (a Actor) Insmod(file string) error                 { return a.insmod(a.name, file) }
func (a Actor) LinkByIndex(index int) (link.Link, error) { return a.linkByIndex(a.name, index) }
func (a Actor) SetHardwareAddr(index int, mac net.HardwareAddr) error {
	return a.setHardwareAddr(a.name, index, mac)
}
