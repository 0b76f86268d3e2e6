package sim

import (
	"context"
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/session"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/sim/mobility"
)

// epoch is virtual time zero: a fixed date, so expiries and key periods are
// the same on every run.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// The daemon's timers that the simulator keeps (mesh.Config's defaults;
// TestDaemonTimers checks they agree): how often a link reconciles again, and
// how often a node expires items and forgets old keys.
const (
	ResyncInterval   = session.ResyncInterval
	MaintainInterval = 10 * time.Minute
)

// recordCache is each simulated node's cache of envelopes written last
// (node.Options.RecordCache): far below a real node's megabyte, which
// thousands of nodes cannot afford, but as much of 128 MB as
// the crowd leaves each, between 16 and 256 KB. At 16 KB (about 25
// envelopes) a batch of more than that pushed on, or a receipt that
// purges its envelope a little later, is read back from the store; at
// 128 KB, the share of 1,000 walkers, those reads cost BenchmarkWalkersDay 4 % of its
// CPU instead of 7 %. The cache holds copies of stored records only, so
// its size changes no result.
func recordCache(nodes int) int {
	const budget = 128 << 20 // for all the nodes together
	return min(max(budget/max(nodes, 1), 16<<10), 256<<10)
}

type simNode struct {
	n     *node.Node
	name  string
	links []*vlink      // links up now, in the order they came up
	fresh []envelope.ID // newly held, not yet offered to the links
}

type message struct {
	kind uint8 // kindPairwise, or room traffic (rooms.go)
	to   int   // pairwise: the recipient
	sent time.Duration
	done bool
	late bool // room traffic: a reader read it after its TTL
	// hops is, per node, how many links the first copy it received had
	// crossed (unreached: 255); dropped once delivered. Pairwise only.
	hops []uint8
	// waiting holds the readers of a group message or channel post that
	// have not read it yet.
	waiting map[int32]bool
}

const unreached = 255

type engine struct {
	sc Scenario
	q  queue
	// Independent random streams, so that a change in one concern (say,
	// how many frames a policy sends) does not move the others.
	workload    *rand.Rand // contacts, message times and pairs
	radio       *rand.Rand // when links come up, their handshake hashes
	loss        *rand.Rand // which frames are lost
	world       *mobility.World
	nodes       []*simNode
	links       map[[2]int32]*vlink
	pending     map[[2]int32]bool // in range, link not up yet
	pairs       [][2]int32        // in range at the last tick, sorted
	resyncEvery time.Duration
	maintain    time.Duration
	msgs        map[envelope.ID]*message
	sent        int        // pairwise messages sent so far
	rooms       *roomState // nil: no room traffic
	res         Result
	err         error
	progress    io.Writer
	lastReport  time.Time // real time of the last progress line
}

func (e *engine) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Run simulates a scenario. Progress lines go to progress (nil: none) about
// every ten seconds of real time; they are the only thing that depends on
// the machine.
func Run(ctx context.Context, sc Scenario, progress io.Writer) (*Result, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	world, err := mobility.New(sc.world())
	if err != nil {
		return nil, fmt.Errorf("invalid scenario: %w", err)
	}
	e := &engine{
		sc: sc, world: world, progress: progress,
		lastReport:  time.Now(),
		workload:    rand.New(rand.NewPCG(sc.Seed, 1)),
		radio:       rand.New(rand.NewPCG(sc.Seed, 2)),
		loss:        rand.New(rand.NewPCG(sc.Seed, 3)),
		links:       map[[2]int32]*vlink{},
		pending:     map[[2]int32]bool{},
		resyncEvery: ResyncInterval,
		maintain:    MaintainInterval,
		msgs:        map[envelope.ID]*message{},
	}
	defer e.close()
	if err := e.setup(); err != nil {
		return nil, err
	}
	e.start()
	if err := e.loop(ctx); err != nil {
		return nil, err
	}
	e.finish()
	return &e.res, nil
}

// beforeClose, when set (by tests), looks at the nodes at the end of a run.
var beforeClose func(*engine)

func (e *engine) close() {
	if beforeClose != nil {
		beforeClose(e)
	}
	for _, sn := range e.nodes {
		if sn != nil {
			sn.n.Close()
		}
	}
}

// setup creates the nodes and their contacts. Contacts meet in person
// before the run: each pair exchanges its request, accept and receipts
// directly, far enough in the past that all of it has expired at time zero.
func (e *engine) setup() error {
	sc := e.sc
	setupAt := epoch.Add(-sc.TTL - 2*time.Hour)
	now := setupAt
	clock := func() time.Time {
		if now.IsZero() {
			return epoch.Add(e.q.now)
		}
		return now
	}
	cfg := node.DefaultConfig
	cfg.Retention, cfg.History = sc.TTL, sc.TTL
	cfg.Hops, cfg.Copies = sc.Hops, sc.Copies
	cfg.InviteLifetime = time.Hour // invites are spent at setup: none is left to index at the start
	// Receipts leave at once: the simulator plans delivery and cost, and a
	// random delay of minutes (a privacy measure, SPEC §6) would only blur
	// the figures by when maintenance happens to run.
	cfg.ReceiptDelay = 0
	e.nodes = make([]*simNode, sc.Nodes)
	for i := range e.nodes {
		name := "n" + strconv.Itoa(i)
		n, err := node.InitMemory(name, cfg, node.Options{Now: clock, Rand: rand.NewChaCha8(seedFor(sc.Seed, i)), RecordCache: recordCache(sc.Nodes)})
		if err != nil {
			return fmt.Errorf("failed to create node %d: %w", i, err)
		}
		sn := &simNode{n: n, name: name}
		n.SetRelayQuota(sc.RelayQuota)
		n.Watch(sn.watcher)
		e.nodes[i] = sn
		e.report("sim: setting up, %d of %d nodes created\n", i+1, sc.Nodes)
	}
	seen := map[[2]int32]bool{}
	for len(e.res.contactPairs) < sc.pairs() {
		a, b := int32(e.workload.IntN(sc.Nodes)), int32(e.workload.IntN(sc.Nodes))
		if a == b || seen[[2]int32{min(a, b), max(a, b)}] {
			continue
		}
		seen[[2]int32{min(a, b), max(a, b)}] = true
		if err := e.meet(int(a), int(b)); err != nil {
			return err
		}
		e.res.contactPairs = append(e.res.contactPairs, [2]int32{a, b})
		e.report("sim: setting up, %d of %d contact pairs introduced\n", len(e.res.contactPairs), sc.pairs())
	}
	if sc.hasRooms() {
		if err := e.setupRooms(seen); err != nil {
			return err
		}
	}
	now = time.Time{} // from here on, virtual time
	for i, sn := range e.nodes {
		if err := sn.n.Maintain(); err != nil {
			return fmt.Errorf("failed to start node %d: %w", i, err)
		}
		sn.fresh = nil
		e.report("sim: setting up, %d of %d nodes started\n", i+1, sc.Nodes)
	}
	return nil
}

// seedFor derives node i's randomness from the scenario seed.
func seedFor(seed uint64, i int) [32]byte {
	var s [32]byte
	for j := range 8 {
		s[j] = byte(seed >> (8 * j))
		s[8+j] = byte(uint64(i) >> (8 * j))
	}
	copy(s[16:], "grapevine sim 1")
	return s
}

// meet makes a and b contacts, as two people scanning each other's code.
func (e *engine) meet(a, b int) error {
	na, nb := e.nodes[a], e.nodes[b]
	inv, err := nb.n.Invite()
	if err != nil {
		return fmt.Errorf("failed to make contacts: %w", err)
	}
	if _, err := na.n.AddContact(inv.Link(), nb.name); err != nil {
		return fmt.Errorf("failed to make contacts: %w", err)
	}
	// The request goes to b, who accepts; the accept and the receipt for the
	// request come back; a's receipt for the accept goes to b.
	if err := handOver(na.n, nb.n); err != nil {
		return err
	}
	if _, err := nb.n.Accept(na.name); err != nil {
		return fmt.Errorf("failed to make contacts: %w", err)
	}
	if err := handOver(nb.n, na.n); err != nil {
		return err
	}
	return handOver(na.n, nb.n)
}

// handOver gives to everything from's own outbox, directly.
func handOver(from, to *node.Node) error {
	var ids []envelope.ID
	for _, h := range from.Inventory() {
		if h.Own {
			ids = append(ids, h.ID)
		}
	}
	return give(from, to, ids)
}

// give hands envelopes ids of from to to, directly.
func give(from, to *node.Node, ids []envelope.ID) error {
	if len(ids) == 0 {
		return nil
	}
	outs, err := from.Forward(ids, func(envelope.ID) bool { return true })
	if err != nil {
		return fmt.Errorf("failed to make contacts: %w", err)
	}
	raws := make([][]byte, 0, len(outs))
	for _, o := range outs {
		if o.Raw != nil {
			raws = append(raws, o.Raw)
		}
	}
	if _, err := to.Ingest(raws); err != nil {
		return fmt.Errorf("failed to make contacts: %w", err)
	}
	return nil
}

// start schedules the workload, the first positions and the timers.
func (e *engine) start() {
	sc := e.sc
	e.res.init(sc)
	e.tick()
	labels, giant := mobility.Components(sc.Nodes, e.pairs)
	e.res.MeanDegree = 2 * float64(len(e.pairs)) / float64(sc.Nodes)
	e.res.GiantComponent = giant
	window := sc.sendUntil()
	times := make([]time.Duration, sc.Messages)
	for i := range times {
		times[i] = time.Duration(e.workload.Int64N(int64(window)))
	}
	slices.Sort(times)
	connected, within := 0, 0
	var reach *mobility.Reach
	for _, t := range times {
		p := e.res.contactPairs[e.workload.IntN(len(e.res.contactPairs))]
		from, to := int(p[0]), int(p[1])
		if e.workload.IntN(2) == 1 {
			from, to = to, from
		}
		if labels[from] == labels[to] {
			connected++
			if reach == nil {
				reach = mobility.NewReach(sc.Nodes, e.pairs)
			}
			if reach.Within(int32(from), int32(to), int(sc.Hops)) {
				within++
			}
		}
		e.q.at(t, func() { e.sendMessage(from, to) })
	}
	if sc.Messages > 0 {
		e.res.PairsConnected = float64(connected) / float64(sc.Messages)
		e.res.PairsWithinHops = float64(within) / float64(sc.Messages)
	}
	for i := range e.nodes {
		// Maintenance as the daemon does it, spread out over the interval.
		offset := time.Duration(int64(e.maintain) * int64(i) / int64(sc.Nodes))
		e.q.at(offset, func() { e.maintainNode(i) })
	}
	if e.rooms != nil {
		e.startRooms()
	}
}

// tick moves the world to now and brings links in line with who is in range.
func (e *engine) tick() {
	e.world.Advance(e.q.now.Seconds())
	next := e.world.Pairs(e.sc.Range, nil)
	i, j := 0, 0
	for i < len(e.pairs) || j < len(next) {
		switch {
		case j == len(next) || i < len(e.pairs) && less(e.pairs[i], next[j]):
			e.outOfRange(e.pairs[i])
			i++
		case i == len(e.pairs) || less(next[j], e.pairs[i]):
			e.inRange(next[j])
			j++
		default:
			i++
			j++
		}
	}
	e.pairs = next
	if e.sc.Mobility != mobility.Static {
		e.q.after(e.sc.Tick, e.tick)
	}
}

func less(a, b [2]int32) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }

func (e *engine) inRange(p [2]int32) {
	e.pending[p] = true
	wait := time.Duration(e.radio.Int64N(int64(e.sc.beaconInterval())))
	e.q.after(wait, func() {
		if e.pending[p] {
			delete(e.pending, p)
			e.linkUp(p[0], p[1])
		}
	})
}

func (e *engine) outOfRange(p [2]int32) {
	delete(e.pending, p)
	if l, ok := e.links[p]; ok {
		e.linkDown(l)
	}
}

func (e *engine) maintainNode(i int) {
	if err := e.nodes[i].n.Maintain(); err != nil {
		e.fail(fmt.Errorf("failed to maintain node %d: %w", i, err))
		return
	}
	e.fanout(i)
	e.q.after(e.maintain, func() { e.maintainNode(i) })
}

func (e *engine) sendMessage(from, to int) {
	text := strings.Repeat("x", e.sc.Size)
	m, err := e.nodes[from].n.Send(e.nodes[to].name, text)
	if err != nil {
		e.fail(fmt.Errorf("failed to send from node %d: %w", from, err))
		return
	}
	id, err := envelope.ParseID(m.ID)
	if err != nil {
		e.fail(err)
		return
	}
	hops := make([]uint8, e.sc.Nodes)
	for i := range hops {
		hops[i] = unreached
	}
	hops[from] = 0
	e.msgs[id] = &message{to: to, sent: e.q.now, hops: hops}
	e.sent++
	e.fanout(from)
}

// noteOpened records deliveries: node i opened these envelopes.
func (e *engine) noteOpened(i int, ids []envelope.ID) {
	for _, id := range ids {
		m, ok := e.msgs[id]
		if ok && m.kind == kindGroup {
			e.roomRead(i, m, e.res.Groups)
			continue
		}
		if ok && m.to == i && !m.done {
			m.done = true
			e.res.delivered(e.q.now-m.sent, e.sc.TTL, m.hops[i])
			m.hops = nil
		}
	}
}

// loop runs the agenda in slices of virtual time, reporting progress.
func (e *engine) loop(ctx context.Context) error {
	// A slice of a second keeps progress lines and Ctrl-C timely even when
	// a large crowd's first seconds take minutes; slicing does not change
	// the order in which events run.
	const slice = time.Second
	wall := time.Now()
	for t := time.Duration(0); t < e.sc.Duration; {
		t = min(t+slice, e.sc.Duration)
		e.q.run(t)
		if e.err != nil {
			return fmt.Errorf("simulation failed at %s: %w", t, e.err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e.report("sim: %s of %s simulated, %d of %d messages delivered, %d links up, %s elapsed\n",
			t, e.sc.Duration, e.res.Delivered, e.sent, len(e.links), time.Since(wall).Round(time.Second))
	}
	return nil
}

// report writes a progress line if the last one is ten seconds old.
func (e *engine) report(format string, args ...any) {
	if e.progress == nil || time.Since(e.lastReport) < 10*time.Second {
		return
	}
	e.lastReport = time.Now()
	fmt.Fprintf(e.progress, format, args...)
}

func (e *engine) finish() {
	for _, l := range e.links {
		e.countDuplicates(l)
	}
	e.res.finish(e.sc)
}
