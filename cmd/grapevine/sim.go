package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/discovery"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/sim"
	"github.com/grapevine-mesh/grapevine/internal/sim/mobility"
)

type simOptions struct {
	nodes                     int
	area                      string
	rangeM                    float64
	mobility                  string
	trace                     string
	beacon                    time.Duration
	nodesSet, areaSet         bool // given on the command line (a trace brings its own)
	loaded                    *mobility.Trace
	speed, pause              string
	tick                      time.Duration
	duration, ttl, until      time.Duration
	messages, size            int
	contacts                  float64
	routing                   string
	hops                      int
	quota                     string
	bandwidth                 float64
	latency                   time.Duration
	loss                      float64
	seed                      uint64
	groupSize, groups         int
	groupMessages             int
	channelPosts              int
	channelReaders            int
	channelBits               int
	spammers                  int
	spamRate                  float64
	json                      bool
	plot, sweep, scenarioFile string
	memprofile                string
	maxMemory                 string
}

func (c *cli) simCmd() *cobra.Command {
	var o simOptions
	d := sim.Default
	cmd := &cobra.Command{
		Use:   "sim [flags]",
		Short: "Simulate a mesh of many nodes on virtual time: delivery, latency, cost",
		Long: `Run the real node and sync code for many nodes at once, on virtual time,
over virtual radio links that exist while two nodes are within range. Nodes
stand still or walk (random waypoint); contacts write to each other at
random times; the output says what share of messages arrived, how fast, and
at what cost in transmissions, bytes and storage.

The same flags and seed give the same output, byte for byte. --sweep runs
one scenario per value of a setting and prints one JSON object per line:
  --sweep range=10:200:10      from 10 to 200 in steps of 10
  --sweep nodes=500,1000,2000  a list
  --sweep routing=epidemic,spray:4,spray:16
Room traffic: --group-size N sends --group-messages to private groups;
--channel-posts N posts to a public channel (stamped at --channel-bits,
low so that a run mints fast); --spam-rate R has --spammers push posts
without valid stamps to their neighbours.
Settings may also come from --scenario FILE, a JSON object whose keys are
flag names ({"nodes": 1000, "area": "2000x2000"}); flags given on the
command line win. See docs/simulation.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.scenarioFile != "" {
				if err := loadScenarioFile(cmd.Flags(), o.scenarioFile); err != nil {
					return err
				}
			}
			return runSim(ctx, cmd.Flags(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", d.Nodes, "how many nodes")
	f.StringVar(&o.area, "area", "1000x1000", "area WxH in metres")
	f.Float64Var(&o.rangeM, "range", d.Range, "radio range in metres")
	f.StringVar(&o.mobility, "mobility", "waypoint", "static, waypoint (random waypoint) or trace (replay --trace)")
	f.StringVar(&o.trace, "trace", "", "replay the movement in this CSV file of t,node,x,y lines (implies --mobility trace; see docs/simulation.md)")
	f.DurationVar(&o.beacon, "beacon-interval", discovery.DefaultInterval, "the nodes' mean beacon interval: neighbours link up within one")
	f.StringVar(&o.speed, "speed", "0.5:1.5", "walking speed MIN:MAX in m/s (waypoint)")
	f.StringVar(&o.pause, "pause", "0s:5m", "pause at each waypoint MIN:MAX (waypoint)")
	f.DurationVar(&o.tick, "tick", d.Tick, "how often positions and links are updated")
	f.DurationVar(&o.duration, "duration", d.Duration, "simulated time")
	f.IntVar(&o.messages, "messages", d.Messages, "messages sent, at random times, between random contacts")
	f.DurationVar(&o.until, "send-until", 0, "messages go out before this time (default: duration - ttl, or duration/2)")
	f.IntVar(&o.size, "size", d.Size, "message text in bytes")
	f.DurationVar(&o.ttl, "ttl", d.TTL, "message lifetime")
	f.Float64Var(&o.contacts, "contacts", d.Contacts, "contacts per node, on average")
	f.StringVar(&o.routing, "routing", "epidemic", "epidemic, or spray:L (binary spray-and-wait with L copies)")
	f.IntVar(&o.hops, "hops", int(d.Hops), "hop limit of each message")
	f.StringVar(&o.quota, "relay-quota", "256MiB", "space each node gives to carrying for others")
	f.Float64Var(&o.bandwidth, "bandwidth", d.Bandwidth, "link bandwidth in bytes per second, each way")
	f.DurationVar(&o.latency, "latency", d.Latency, "link latency, one way")
	f.Float64Var(&o.loss, "loss", d.Loss, "share of frames lost (and sent again)")
	f.Uint64Var(&o.seed, "seed", d.Seed, "random seed")
	f.IntVar(&o.groupSize, "group-size", 0, "members of each private group, its admin included (0: no groups)")
	f.IntVar(&o.groups, "groups", d.Groups, "private groups of --group-size members, set up before the run")
	f.IntVar(&o.groupMessages, "group-messages", d.GroupMessages, "messages to groups (with --group-size), one envelope each, from random members")
	f.IntVar(&o.channelPosts, "channel-posts", 0, "posts to one public channel, with real stamps, from random readers (0: no channel)")
	f.IntVar(&o.channelReaders, "channel-readers", 0, "nodes that read the channel (0: every node)")
	f.IntVar(&o.channelBits, "channel-bits", d.ChannelBits, "the channel's stamp difficulty, and every node's floor (default 21 in the node; low here so that posts mint fast)")
	f.Float64Var(&o.spamRate, "spam-rate", 0, "posts without a valid stamp that each spammer pushes to its neighbours per simulated minute")
	f.IntVar(&o.spammers, "spammers", d.Spammers, "hostile nodes sending --spam-rate")
	f.BoolVar(&o.json, "json", false, "print JSON (one object per run) instead of a table")
	f.StringVar(&o.plot, "plot", "", "write charts (SVG and PNG) to this directory")
	f.StringVar(&o.sweep, "sweep", "", "vary one setting: NAME=FROM:TO:STEP or NAME=V1,V2,...")
	f.StringVar(&o.scenarioFile, "scenario", "", "read settings from a JSON file")
	f.StringVar(&o.memprofile, "memprofile", "", "write a heap profile (go tool pprof) taken when the live heap peaked")
	f.StringVar(&o.maxMemory, "max-memory", "", "let the run use up to this much memory (e.g. 2GB): garbage is collected less often below it and more often near it; results do not change (default: three quarters of RAM)")
	return cmd
}

// loadScenarioFile sets every flag named in the file that the command line
// did not set.
func loadScenarioFile(fs *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read scenario: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("failed to read scenario %s: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same file sets flags in the same order
	for _, k := range keys {
		fl := fs.Lookup(k)
		if fl == nil || k == "scenario" {
			return fmt.Errorf("scenario %s: unknown setting %q", path, k)
		}
		if fl.Changed {
			continue
		}
		v := fmt.Sprint(m[k])
		if f, ok := m[k].(float64); ok {
			v = strconv.FormatFloat(f, 'f', -1, 64)
		}
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("scenario %s: %s: %w", path, k, err)
		}
	}
	return nil
}

func (o *simOptions) scenario() (sim.Scenario, error) {
	sc := sim.Scenario{Nodes: o.nodes, Range: o.rangeM, Tick: o.tick, Duration: o.duration,
		Messages: o.messages, SendUntil: o.until, Size: o.size, TTL: o.ttl, Contacts: o.contacts,
		Bandwidth: o.bandwidth, Latency: o.latency, Loss: o.loss, Seed: o.seed,
		GroupSize: o.groupSize, Groups: o.groups, GroupMessages: o.groupMessages,
		ChannelPosts: o.channelPosts, ChannelReaders: o.channelReaders, ChannelBits: o.channelBits,
		Spammers: o.spammers, SpamRate: o.spamRate}
	var err error
	if sc.Width, sc.Height, err = parseArea(o.area); err != nil {
		return sc, err
	}
	if sc.Mobility, err = mobility.ParseModel(o.mobility); err != nil {
		return sc, fmt.Errorf("invalid --mobility: %w", err)
	}
	if o.beacon < 100*time.Millisecond {
		return sc, fmt.Errorf("invalid --beacon-interval %v: at least 100ms", o.beacon)
	}
	sc.BeaconInterval = o.beacon
	if err := o.loadTrace(&sc); err != nil {
		return sc, err
	}
	if sc.SpeedMin, sc.SpeedMax, err = parseRange(o.speed, parseFloat); err != nil {
		return sc, fmt.Errorf("invalid --speed: %w", err)
	}
	if sc.PauseMin, sc.PauseMax, err = parseRange(o.pause, time.ParseDuration); err != nil {
		return sc, fmt.Errorf("invalid --pause: %w", err)
	}
	if sc.Copies, err = node.ParseRouting(o.routing); err != nil {
		return sc, fmt.Errorf("invalid --routing: %w", err)
	}
	if o.hops < 1 || o.hops > node.MaxHops {
		return sc, fmt.Errorf("invalid --hops %d: must be 1 to %d (the protocol's limit)", o.hops, node.MaxHops)
	}
	sc.Hops = uint8(o.hops)
	if sc.RelayQuota, err = parseSize(o.quota); err != nil {
		return sc, fmt.Errorf("invalid --relay-quota: %w", err)
	}
	return sc, sc.Validate()
}

// loadTrace reads --trace (once) and fits the scenario to it: its node
// count, and its extent as the area unless --area says otherwise.
func (o *simOptions) loadTrace(sc *sim.Scenario) error {
	if o.trace == "" {
		if sc.Mobility == mobility.Traced {
			return errors.New("invalid --mobility trace: give the movement with --trace FILE")
		}
		return nil
	}
	if o.loaded == nil {
		f, err := os.Open(o.trace)
		if err != nil {
			return fmt.Errorf("failed to read --trace: %w", err)
		}
		defer f.Close()
		if o.loaded, err = mobility.ParseTrace(f); err != nil {
			return fmt.Errorf("failed to read --trace %s: %w", o.trace, err)
		}
	}
	sc.Mobility, sc.Trace = mobility.Traced, o.loaded
	if o.nodesSet && sc.Nodes != o.loaded.Nodes() {
		return fmt.Errorf("invalid --nodes %d: the trace %s moves %d nodes", sc.Nodes, o.trace, o.loaded.Nodes())
	}
	sc.Nodes = o.loaded.Nodes()
	if !o.areaSet {
		w, h := o.loaded.Extent()
		sc.Width, sc.Height = max(math.Ceil(w), 1), max(math.Ceil(h), 1)
	}
	return nil
}

func parseArea(s string) (w, h float64, err error) {
	a, b, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.ParseFloat(a, 64)
		if err == nil {
			h, err = strconv.ParseFloat(b, 64)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("invalid --area %q: want WxH in metres, e.g. 1000x1000", s)
	}
	return w, h, nil
}

// parseRange reads MIN:MAX (or one value for both) with parse.
func parseRange[T float64 | time.Duration](s string, parse func(string) (T, error)) (lo, hi T, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		a, b = s, s
	}
	if lo, err = parse(a); err == nil {
		hi, err = parse(b)
	}
	if err != nil || lo > hi {
		return 0, 0, fmt.Errorf("%q: want MIN:MAX", s)
	}
	return lo, hi, nil
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// sweepValues expands NAME=FROM:TO:STEP or NAME=V1,V2,... into the flag
// name and its values.
func sweepValues(fs *pflag.FlagSet, spec string) (string, []string, error) {
	name, vals, ok := strings.Cut(spec, "=")
	if !ok || vals == "" {
		return "", nil, fmt.Errorf("invalid --sweep %q: want NAME=FROM:TO:STEP or NAME=V1,V2", spec)
	}
	if fs.Lookup(name) == nil || name == "sweep" || name == "plot" || name == "json" || name == "scenario" {
		return "", nil, fmt.Errorf("invalid --sweep %q: no setting %q", spec, name)
	}
	if parts := strings.Split(vals, ":"); len(parts) == 3 && name != "routing" {
		var f [3]float64
		for i, p := range parts {
			x, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return "", nil, fmt.Errorf("invalid --sweep %q: %q is not a number", spec, p)
			}
			f[i] = x
		}
		if f[2] <= 0 || f[1] < f[0] || (f[1]-f[0])/f[2] > 1000 {
			return "", nil, fmt.Errorf("invalid --sweep %q: want FROM <= TO and a positive STEP (at most 1000 points)", spec)
		}
		var out []string
		for i := 0; ; i++ {
			x := f[0] + float64(i)*f[2]
			if x > f[1]+f[2]*1e-9 {
				break
			}
			out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
		}
		return name, out, nil
	}
	return name, strings.Split(vals, ","), nil
}

func runSim(ctx context.Context, fs *pflag.FlagSet, o *simOptions, stdout, stderr io.Writer) error {
	o.nodesSet, o.areaSet = fs.Changed("nodes"), fs.Changed("area")
	var scs []sim.Scenario
	var labels []string
	sweepName := ""
	if o.sweep == "" {
		sc, err := o.scenario()
		if err != nil {
			return err
		}
		scs = append(scs, sc)
	} else {
		name, values, err := sweepValues(fs, o.sweep)
		if err != nil {
			return err
		}
		sweepName = name
		for _, v := range values {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("invalid --sweep value %s=%s: %w", name, v, err)
			}
			sc, err := o.scenario()
			if err != nil {
				return fmt.Errorf("sweep point %s=%s: %w", name, v, err)
			}
			scs = append(scs, sc)
			labels = append(labels, name+"="+v)
		}
	}
	if err := limitMemory(o.maxMemory); err != nil {
		return err
	}
	if o.memprofile != "" {
		prof := startPeakProfile(o.memprofile)
		defer func() {
			peak, err := prof.Stop()
			if err != nil {
				fmt.Fprintf(stderr, "sim: %v\n", err)
				return
			}
			fmt.Fprintf(stderr, "sim: heap profile at the peak live heap (%d MB) written to %s\n", peak>>20, o.memprofile)
		}()
	}
	results, err := runAll(ctx, scs, labels, stderr, func(r *sim.Result) error {
		if !o.json {
			return nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	})
	if err != nil {
		return err
	}
	if !o.json {
		if err := sim.WriteTable(stdout, results); err != nil {
			return err
		}
	}
	if o.plot != "" {
		files, err := writePlots(o.plot, sweepName, labels, results)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "sim: charts written: %s\n", strings.Join(files, ", "))
	}
	return nil
}

// runAll runs the scenarios, two at a time on two cores, and hands each
// result to emit in the order of the scenarios, as soon as it and those
// before it are done.
func runAll(ctx context.Context, scs []sim.Scenario, labels []string, stderr io.Writer, emit func(*sim.Result) error) ([]*sim.Result, error) {
	results := make([]*sim.Result, len(scs))
	errs := make([]error, len(scs))
	done := make([]chan struct{}, len(scs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := min(len(scs), max(1, runtime.GOMAXPROCS(0)))
	next := make(chan int)
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for range workers {
		wg.Go(func() {
			for i := range next {
				var progress io.Writer = lockedWriter{&logMu, stderr, ""}
				if labels != nil {
					progress = lockedWriter{&logMu, stderr, labels[i] + ": "}
				}
				results[i], errs[i] = sim.Run(ctx, scs[i], progress)
				close(done[i])
			}
		})
	}
	go func() {
		defer close(next)
		for i := range scs {
			select {
			case next <- i:
			case <-ctx.Done():
				for ; i < len(scs); i++ { // never started
					errs[i] = ctx.Err()
					close(done[i])
				}
				return
			}
		}
	}()
	var err error
	for i := range scs {
		<-done[i]
		if err != nil {
			continue
		}
		if err = errs[i]; err != nil && labels != nil {
			err = fmt.Errorf("%s: %w", labels[i], err)
		}
		if err == nil {
			err = emit(results[i])
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	return results, nil
}

// lockedWriter prefixes progress lines and keeps concurrent runs' lines whole.
type lockedWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, l.prefix); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}
