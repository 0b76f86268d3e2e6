package sim

import (
	"github.com/grapevine-mesh/grapevine/internal/link"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

// The radio below the link; what the link itself costs comes from package
// link, and how a session is driven over it from package session (the
// same Start, Receive and Pull the mesh calls).
const (
	// commitDelay is how long a receiving node gathers envelopes before it
	// ingests them in one transaction: the mesh's group commit takes what
	// piled up while the previous commit ran; a few milliseconds here.
	commitDelay = 5 * time.Millisecond
	// minRetransmit is TCP's minimum retransmission timeout.
	minRetransmit = 200 * time.Millisecond
)

// A vlink is one link between two nodes in range: the node with the lower
// index dialled (it runs reconciliation rounds), end 0 is that node.
type vlink struct {
	ends [2]int32
	sess [2]*session.Session
	dir  [2]direction // dir[k] carries frames from ends[k] to ends[1-k]
	// committing[k]: a group commit of what end k received is scheduled.
	committing [2]bool
	alive      bool
	up         time.Duration
}

// direction is one way of a link: a serialiser that is busy until a time,
// and in-order delivery.
type direction struct {
	busyUntil   time.Duration // the radio is free from then on
	lastArrival time.Duration // frames arrive in order (TCP)
	pulling     bool          // a pull of queued envelopes is scheduled
	// inFlight are the frames on the air from inFlight[head] on, in the
	// order they arrive: each has an event, arrive, which delivers the
	// first. One func a direction, not a closure a frame: a run puts tens
	// of millions of frames on the air.
	inFlight []flight
	head     int
	arrive   func()
	pullNow  func() // the event of pull, made once
}

// flight is a frame on the air, with the message it is (if followed).
type flight struct {
	f   session.Frame
	msg *message
}

// send puts frames on the air from end k of l, behind what is already queued.
func (e *engine) send(l *vlink, k int, frames []session.Frame) {
	d := &l.dir[k]
	for _, f := range frames {
		size := len(f.Payload) + link.FrameOverhead
		e.res.LinkBytes += int64(size)
		var msg *message // a message the simulator follows, for hop counts
		switch f.Type {
		case session.TypeEnvelope:
			msg = e.countTransmission(f.Payload, size)
		case session.TypeSpray:
			msg = e.countTransmission(f.Payload[1:], size)
		}
		start := max(e.q.now, d.busyUntil)
		d.busyUntil = start + e.airtime(size)
		arrive := d.busyUntil + e.sc.Latency
		if e.sc.Loss > 0 && e.loss.Float64() < e.sc.Loss {
			// Lost: sent again once the retransmission timer fires.
			e.res.LinkBytes += int64(size)
			if msg != nil && msg.kind != kindPairwise {
				e.roomTransmission(msg, size, true)
			}
			arrive += max(minRetransmit, 4*e.sc.Latency) + e.airtime(size)
		}
		arrive = max(arrive, d.lastArrival)
		d.lastArrival = arrive
		// Arrival times never go back and events at one time run in the
		// order scheduled, so the events come in the order of inFlight.
		d.inFlight = append(d.inFlight, flight{f, msg})
		if d.arrive == nil {
			d.arrive = func() { e.land(l, k) }
		}
		e.q.at(arrive, d.arrive)
	}
}

// land delivers the first frame on the air from end k of l.
func (e *engine) land(l *vlink, k int) {
	d := &l.dir[k]
	fl := d.inFlight[d.head]
	d.inFlight[d.head] = flight{}
	if d.head++; d.head == len(d.inFlight) {
		d.inFlight, d.head = d.inFlight[:0], 0
	}
	e.deliver(l, 1-k, fl.f, fl.msg)
}

// countTransmission counts an envelope of size bytes on the wire put on
// the air and returns the message it is, if the simulator follows it
// (receipts it does not). Room traffic has counts of its own.
func (e *engine) countTransmission(raw []byte, size int) *message {
	if kind, ok := envelope.KindOf(raw); !ok || kind == envelope.KindReceipt {
		e.res.Transmissions++
		e.res.ReceiptTransmissions += int64(b2i(ok))
		return nil
	}
	m := e.msgs[envelope.ComputeID(raw)]
	if m != nil && m.kind != kindPairwise {
		e.roomTransmission(m, size, false)
		return m
	}
	e.res.Transmissions++
	return m
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *engine) airtime(bytes int) time.Duration {
	return time.Duration(float64(bytes) / e.sc.Bandwidth * float64(time.Second))
}

// deliver hands a frame to end k's session.
func (e *engine) deliver(l *vlink, k int, f session.Frame, msg *message) {
	if !l.alive {
		return // the link broke while the frame was in the air
	}
	e.noteHop(l, k, msg)
	out, next, err := l.sess[k].Receive(f)
	if err != nil {
		e.fail(err)
		return
	}
	e.send(l, k, out)
	switch {
	case next.StoreNow:
		e.ingest(l, k)
	case next.Store && !l.committing[k]:
		l.committing[k] = true
		e.q.after(commitDelay, func() { e.flush(l, k) })
	}
	if next.Pull {
		e.pull(l, k)
	}
	if next.Release > 0 {
		e.q.after(next.Release, func() {
			if l.alive {
				l.sess[k].Release()
				e.fanout(int(l.ends[k])) // Release may have raised a hop budget
				e.pull(l, k)
			}
		})
	}
}

// noteHop records how far a message has come when a copy first reaches
// end k: one link further than the node that sent it.
func (e *engine) noteHop(l *vlink, k int, m *message) {
	if m == nil || m.hops == nil {
		return
	}
	from, to := l.ends[1-k], l.ends[k]
	if m.hops[to] == unreached && m.hops[from] != unreached {
		m.hops[to] = min(m.hops[from]+1, unreached-1)
	}
}

// flush ingests what end k received (a group commit).
func (e *engine) flush(l *vlink, k int) {
	l.committing[k] = false
	if !l.alive {
		return
	}
	e.ingest(l, k)
}

func (e *engine) ingest(l *vlink, k int) {
	rep, err := l.sess[k].Flush()
	if err != nil {
		e.fail(err)
		return
	}
	e.res.Duplicates += int64(rep.Duplicate)
	e.res.AlreadyDelivered += int64(rep.AlreadyDelivered)
	if e.rooms != nil {
		e.noteReport(rep)
	}
	e.noteOpened(int(l.ends[k]), rep.Opened)
	e.fanout(int(l.ends[k]))
	e.pull(l, k) // acknowledgements of spray copies, if any
}

// pull schedules end k to take queued envelopes when its radio frees up.
func (e *engine) pull(l *vlink, k int) {
	d := &l.dir[k]
	if d.pulling || l.sess[k].Queued() == 0 {
		return
	}
	d.pulling = true
	if d.pullNow == nil {
		d.pullNow = func() { e.pulled(l, k) }
	}
	e.q.at(d.busyUntil, d.pullNow)
}

// pulled is the pull scheduled by pull: end k takes what it has queued.
func (e *engine) pulled(l *vlink, k int) {
	d := &l.dir[k]
	d.pulling = false
	if !l.alive {
		return
	}
	frames, _, err := l.sess[k].Pull()
	if err != nil {
		e.fail(err)
		return
	}
	if len(frames) == 0 {
		return
	}
	e.send(l, k, frames)
	e.pull(l, k)
}

// linkUp opens a link between nodes a < b: the handshake, then each side's
// Hello and the dialler's first reconciliation round, as the mesh does.
func (e *engine) linkUp(a, b int32) {
	l := &vlink{ends: [2]int32{a, b}, alive: true, up: e.q.now}
	binding := make([]byte, 32) // the handshake hash: fresh per link
	for i := range binding {
		binding[i] = byte(e.radio.Uint32())
	}
	l.sess[0] = session.New(e.nodes[a].n, session.Config{Initiator: true, Source: e.nodes[b].name, Binding: binding})
	l.sess[1] = session.New(e.nodes[b].n, session.Config{Source: e.nodes[a].name, Binding: binding})
	// Noise XX: three messages, then both sides may send.
	e.res.LinkBytes += link.MeanHandshakeBytes
	ready := e.q.now + 3*e.sc.Latency + e.airtime(link.MeanHandshakeBytes)
	l.dir[0].busyUntil, l.dir[1].busyUntil = ready, ready
	e.links[[2]int32{a, b}] = l
	e.nodes[a].links = append(e.nodes[a].links, l)
	e.nodes[b].links = append(e.nodes[b].links, l)
	e.res.Links++
	for k := range 2 {
		start, err := l.sess[k].Start()
		if err != nil {
			e.fail(err)
			return
		}
		e.send(l, k, start)
	}
	e.q.after(e.resyncEvery, func() { e.resync(l) })
}

// resync runs a reconciliation round again every resync interval while the
// link lasts.
func (e *engine) resync(l *vlink) {
	if !l.alive {
		return
	}
	open, err := l.sess[0].Open()
	if err != nil {
		e.fail(err)
		return
	}
	e.send(l, 0, open)
	e.q.after(e.resyncEvery, func() { e.resync(l) })
}

// linkDown ends a link: frames in the air are lost; what each side had
// received is ingested, as the mesh does when a connection closes.
func (e *engine) linkDown(l *vlink) {
	l.alive = false
	delete(e.links, l.ends)
	e.countDuplicates(l)
	for k := range 2 {
		sn := e.nodes[l.ends[k]]
		for i, x := range sn.links {
			if x == l {
				sn.links = append(sn.links[:i], sn.links[i+1:]...)
				break
			}
		}
		if l.sess[k].Pending() > 0 {
			e.ingest(l, k)
		}
	}
	// Then each side takes back the spray copies the other never
	// acknowledged: those in the air are lost with the link, and so are
	// acknowledgements of what was just ingested (both keep those copies).
	for k := range 2 {
		if err := l.sess[k].Close(); err != nil {
			e.fail(err)
		}
		e.res.CopiesReturned += int64(l.sess[k].Stats().CopiesReturned)
	}
}

// countDuplicates adds what l's sessions dropped on arrival as already held
// (the ingest counts the duplicates that reached the store).
func (e *engine) countDuplicates(l *vlink) {
	for k := range 2 {
		e.res.Duplicates += int64(l.sess[k].Stats().Redundant)
	}
}

// fanout offers the envelopes node i just came to hold to every link it has
// (live push); each session skips what its peer holds, such as their source.
func (e *engine) fanout(i int) {
	sn := e.nodes[i]
	if len(sn.fresh) == 0 {
		return
	}
	ids := sn.fresh
	sn.fresh = nil
	if e.rooms != nil {
		e.noteHeld(i, ids)
	}
	if b := sn.n.HeldBytes(); b > e.res.PeakStoreBytes {
		e.res.PeakStoreBytes = b
	}
	for _, l := range sn.links {
		k := 0
		if int(l.ends[1]) == i {
			k = 1
		}
		l.sess[k].Offer(ids)
		e.pull(l, k)
	}
	e.fanout(i) // an Offer may have raised a hop budget: a better copy to announce
}

// watcher records what a node newly holds; it runs under the node's lock.
func (sn *simNode) watcher(ids []envelope.ID) { sn.fresh = append(sn.fresh, ids...) }
