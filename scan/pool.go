package scan

import (
	"context"
	"sync"
	"time"
)

// probePool is the engines' portable form: conc goroutines run the probe
// function each newWorker returns over the probes next gives, and emit gets
// every result from the calling goroutine. next and emit are never called at
// the same time. The wait function handed to a probe blocks until the rate
// allows another packet; a probe calls it before each try.
func probePool(ctx context.Context, conc, rate int, next func() (Probe, bool), emit func(Result),
	newWorker func() func(p Probe, wait func()) Result) error {
	var mu sync.Mutex // next and emit may share state
	pace := newPacer(rate)
	var paceMu sync.Mutex
	wait := func() {
		for {
			paceMu.Lock()
			w := pace.wait(time.Now())
			paceMu.Unlock()
			if w == 0 {
				return
			}
			time.Sleep(w)
		}
	}
	probes := make(chan Probe)
	results := make(chan Result)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe := newWorker()
			for p := range probes {
				select {
				case results <- probe(p, wait):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(probes)
		for {
			mu.Lock()
			p, ok := next()
			mu.Unlock()
			if !ok {
				return
			}
			select {
			case probes <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	for r := range results {
		mu.Lock()
		emit(r)
		mu.Unlock()
	}
	return ctx.Err()
}
