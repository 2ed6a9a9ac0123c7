//go:build race

package apply

// raceEnabled: the race detector perturbs the scheduler on purpose
// (goroutine order, select), so a seed's interleaving is not replayed
// exactly under -race.
const raceEnabled = true
