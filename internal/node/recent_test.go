package node

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
)

// TestRecentRecordsBound: the newest records stay, the oldest go once the
// byte bound is passed, and a rewritten record is not evicted by the stale
// place of its first version.
const recentBytes = DefaultRecordCache

func TestRecentRecordsBound(t *testing.T) {
	r := recentRecords{limit: recentBytes}
	id := func(i int) envelope.ID { return envelope.ID{byte(i), byte(i >> 8), byte(i >> 16)} }
	rec := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000) }
	r.put(id(0), rec(0))
	const n = 3 * recentBytes / 1000
	for i := 1; i < n; i++ {
		r.put(id(i), rec(i))
		switch i {
		case 5:
			r.put(id(0), rec(7)) // rewritten: its first place is stale
		case recentBytes/(1000+recentOverhead) + 2: // the first places are consumed
			if _, ok := r.get(id(1)); ok {
				t.Fatal("oldest record kept past the bound")
			}
			if v, ok := r.get(id(0)); !ok || v[0] != 7 {
				t.Fatal("rewritten record evicted by its stale first place, or not replaced")
			}
		}
		if r.bytes > recentBytes {
			t.Fatalf("after %d records: %d bytes kept, bound %d", i, r.bytes, recentBytes)
		}
	}
	if v, ok := r.get(id(n - 1)); !ok || !bytes.Equal(v, rec(n-1)) {
		t.Error("newest record missing")
	}
	if _, ok := r.get(id(0)); ok {
		t.Error("rewritten record kept long after it")
	}
	total := 0
	for _, i := range r.at {
		total += len(r.q[i].v) + recentOverhead
	}
	if total != r.bytes || r.n < len(r.at) {
		t.Errorf("accounting: %d bytes counted, %d held; %d queued for %d records", r.bytes, total, r.n, len(r.at))
	}
	r.drop(id(n - 1))
	if _, ok := r.get(id(n - 1)); ok {
		t.Error("dropped record still returned")
	}
}

// TestRecentRecordsDroppedDoNotAccumulate: records dropped with their
// envelopes (a receipt purges each message soon after it arrived) keep the
// bytes under the bound, so eviction never walks past their keys; those
// keys must not pile up for the life of the node (a simulated day grew by
// a key per message on every node).
func TestRecentRecordsDroppedDoNotAccumulate(t *testing.T) {
	r := recentRecords{limit: 64 << 10}
	id := func(i int) envelope.ID { return envelope.ID{byte(i), byte(i >> 8), byte(i >> 16)} }
	for i := range 100_000 {
		r.put(id(i), make([]byte, 300))
		if i >= 10 {
			r.drop(id(i - 10)) // purged ten arrivals later
		}
		if q := r.n; q > 2*len(r.at)+70 {
			t.Fatalf("after %d records: %d places queued for %d records", i+1, q, len(r.at))
		}
	}
	if len(r.q) > 4096 {
		t.Errorf("the queue's array grew to %d places for %d records", len(r.q), len(r.at))
	}
}

// TestRecentRecordsGiveBackRoom: after a burst of records that then left
// (a sweep), the cache holds a map and a queue the size of what remains,
// not of the burst — a Go map never shrinks by itself.
func TestRecentRecordsGiveBackRoom(t *testing.T) {
	r := recentRecords{limit: recentBytes}
	id := func(i int) envelope.ID { return envelope.ID{byte(i), byte(i >> 8), byte(i >> 16)} }
	const burst = 5000
	for i := range burst {
		r.put(id(i), []byte{byte(i)})
	}
	for i := range burst - 10 {
		r.drop(id(i))
	}
	if r.peak > 4*10+64 {
		t.Errorf("the map was last made for %d records, %d remain", r.peak, len(r.at))
	}
	r.put(id(burst), []byte{1})
	if c := len(r.q); c > 4*r.n+64 {
		t.Errorf("the queue keeps room for %d places, %d queued", c, r.n)
	}
	for i := burst - 10; i <= burst; i++ {
		if _, ok := r.get(id(i)); !ok {
			t.Fatalf("record %d lost when the map was remade", i)
		}
	}
}

// TestRecentRecordsPrefixCollision: two IDs alike in their first 8 bytes
// are never confused — the later evicts the earlier, which is then not
// kept (read from the store instead), and dropping either leaves the
// other's state right.
func TestRecentRecordsPrefixCollision(t *testing.T) {
	r := recentRecords{limit: recentBytes}
	a, b := envelope.ID{1, 2, 3, 4, 5, 6, 7, 8, 'a'}, envelope.ID{1, 2, 3, 4, 5, 6, 7, 8, 'b'}
	r.put(a, []byte("record a"))
	if v, ok := r.get(b); ok {
		t.Fatalf("b found as %q before it was put", v)
	}
	r.put(b, []byte("record b"))
	if v, ok := r.get(a); ok {
		t.Fatalf("a found as %q after b took its place", v)
	}
	if v, ok := r.get(b); !ok || string(v) != "record b" {
		t.Fatalf("b: %q, %v", v, ok)
	}
	r.drop(a) // not kept: must not drop b
	if _, ok := r.get(b); !ok {
		t.Fatal("dropping a dropped b")
	}
	if r.bytes != len("record b")+recentOverhead || len(r.at) != 1 {
		t.Errorf("%d bytes counted for %d records", r.bytes, len(r.at))
	}
	r.drop(b)
	if _, ok := r.get(b); ok || r.bytes != 0 {
		t.Errorf("b dropped: still found %v, %d bytes counted", ok, r.bytes)
	}
}

// TestRecentRecordsAgainstMap: thousands of random puts, rewrites and drops
// under a small bound; what the cache returns is always the last version
// put, the bytes counted are those kept, and the newest record is kept.
func TestRecentRecordsAgainstMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	r := recentRecords{limit: 16 << 10}
	last := map[envelope.ID][]byte{}
	for step := range 20_000 {
		id := envelope.ID{byte(rnd.IntN(300)), byte(step % 3)} // rewrites, and IDs sharing a prefix
		if rnd.IntN(4) == 0 {
			r.drop(id)
			delete(last, id)
			continue
		}
		v := make([]byte, 4+rnd.IntN(500))
		binary.LittleEndian.PutUint32(v, uint32(step))
		r.put(id, v)
		last[id] = v
		if got, ok := r.get(id); !ok || &got[0] != &v[0] {
			t.Fatalf("step %d: the record just put is not returned", step)
		}
		total := 0
		for _, i := range r.at {
			total += len(r.q[i].v) + recentOverhead
			if want := last[r.q[i].id]; &want[0] != &r.q[i].v[0] {
				t.Fatalf("step %d: a stale version of %x kept", step, r.q[i].id)
			}
		}
		if total != r.bytes || r.bytes > r.limit {
			t.Fatalf("step %d: %d bytes counted, %d kept, bound %d", step, r.bytes, total, r.limit)
		}
	}
}

// TestProvenDeliveredForgetsExpired: the set of envelopes proven delivered
// keeps what may still circulate, not every message of the node's life.
func TestProvenDeliveredForgetsExpired(t *testing.T) {
	var p provenDelivered
	const life = 3600
	for now := uint32(1_000_000); now < 1_000_000+24*3600; now += 5 { // a message every 5 s, a day
		p.add([]provenEntry{{envelope.ID{byte(now), byte(now >> 8), byte(now >> 16)}, now + life}}, now)
	}
	if alive := life / 5; len(p.m) > 2*alive+1024 {
		t.Fatalf("%d entries kept, %d alive", len(p.m), alive)
	}
	id := envelope.ID{1, 2, 3}
	p.add([]provenEntry{{id, 2_000_000}}, 1_100_000)
	if !p.has(id) {
		t.Fatal("a live entry was not kept")
	}
}
