package apply

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dpm-guest-image-tools/dpm-netconf/internal/kernelmodel"
)

// BenchmarkApply configures fresh OSA NICs on the model where online takes
// 200 ms, as a real OSA takes a good part of a second. Concurrent: 12 NICs
// cost about what one does. Sequential (the old scripts' way): 12 times.
//
//	go test -run XXX -bench Apply -benchtime 5x ./internal/apply/
func BenchmarkApply(b *testing.B) {
	for _, mode := range []string{"concurrent", "sequential"} {
		for _, n := range []int{1, 12} {
			b.Run(fmt.Sprintf("%s/nics=%d", mode, n), func(b *testing.B) {
				var list strings.Builder
				for i := 0; i < n; i++ {
					fmt.Fprintf(&list, "%04x,0,0a00000000%02x;", 0x100+4*i, i)
				}
				nics := parse(b, list.String())
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					m := kernelmodel.New()
					m.OnlineDelay = 200 * time.Millisecond
					for i := 0; i < n; i++ {
						m.AddOSA(fmt.Sprintf("0.0.%04x", 0x100+4*i), fmt.Sprintf("%02x", i))
					}
					cfg := newConfig(b, m)
					cfg.Sequential = mode == "sequential"
					b.StartTimer()
					if rs := Apply(context.Background(), cfg, nics); Failed(rs) {
						b.Fatalf("%+v", rs)
					}
				}
			})
		}
	}
}
