package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// limitMemory sets the collector's soft memory limit: to max (--max-memory)
// if given, else to three quarters of the machine's RAM unless GOMEMLIMIT
// says otherwise. Without max the collector runs at GOGC as usual, letting
// the heap grow to twice what is live, and the limit only makes it work
// harder instead of the run being killed for want of memory. That lets the
// largest scenarios finish on a machine they nearly fill, and a planner
// trade CPU time for memory: a run whose live heap is two thirds of max
// stays within max (docs/simulation.md §4).
//
// With max, the memory up to max is the planner's to spend, so the
// collector waits for the heap to grow by gcPercentUnderCap per cent of
// what is live (or to near max, whichever comes first) instead of 100:
// a run whose live heap is small collects a few times less often. The
// collector's pacing changes only when garbage is collected, never what a
// run computes (sim.txtar checks the same JSON under a small cap).
func limitMemory(max string) error {
	if max != "" {
		n, err := parseSize(max)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid --max-memory %q: want a size such as 2GB", max)
		}
		debug.SetMemoryLimit(n)
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercentUnderCap)
		}
		return nil
	}
	if ram := physicalMemory(); ram > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(ram / 4 * 3))
	}
	return nil
}

// gcPercentUnderCap is GOGC under --max-memory (see limitMemory). Not off:
// a run whose live heap nears the cap would then collect continually,
// while 400 lets the heap grow to five times what is live at most.
const gcPercentUnderCap = 400

// peakProfiler writes a heap profile whenever the live heap reaches a new
// high, so that the file describes the run at its largest rather than at
// the end, when the nodes are being closed. It looks every interval.
type peakProfiler struct {
	path     string
	interval time.Duration
	peak     uint64 // the largest live heap seen
	written  uint64 // the live heap when the profile was last written
	stop     chan struct{}
	done     chan error
}

// startPeakProfile starts watching the live heap; Stop ends it and says
// whether the profile could be written.
func startPeakProfile(path string) *peakProfiler {
	p := &peakProfiler{path: path, interval: 2 * time.Second, stop: make(chan struct{}), done: make(chan error, 1)}
	go p.run()
	return p
}

func (p *peakProfiler) run() {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.done <- p.check()
			return
		case <-t.C:
			if err := p.check(); err != nil {
				p.done <- err
				return
			}
		}
	}
}

// check writes the profile if the heap that survived the last collection
// is the largest seen, by 2 % at least (writing one costs a pass over
// every sampled allocation: not every few seconds while a large run grows).
func (p *peakProfiler) check() error {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := s[0].Value.Uint64()
	p.peak = max(p.peak, live)
	if live <= p.written+p.written/50 {
		return nil
	}
	p.written = live
	var b bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
		return fmt.Errorf("failed to write heap profile: %w", err)
	}
	if err := os.WriteFile(p.path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("failed to write heap profile: %w", err)
	}
	return nil
}

// Stop takes a last look and returns the peak live heap seen.
func (p *peakProfiler) Stop() (uint64, error) {
	close(p.stop)
	err := <-p.done
	return p.peak, err
}
