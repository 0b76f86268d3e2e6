package node

import (
	"bytes"
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
	for _, rec := range r.m {
		total += len(rec.v) + recentOverhead
	}
	if total != r.bytes || len(r.fifo)-r.head < len(r.m) {
		t.Errorf("accounting: %d bytes counted, %d held; %d queued for %d records", r.bytes, total, len(r.fifo)-r.head, len(r.m))
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
		if q := len(r.fifo) - r.head; q > 2*len(r.m)+70 {
			t.Fatalf("after %d records: %d keys queued for %d records", i+1, q, len(r.m))
		}
	}
	if cap(r.fifo) > 4096 {
		t.Errorf("the queue's array grew to %d keys for %d records", cap(r.fifo), len(r.m))
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
		t.Errorf("the map was last made for %d records, %d remain", r.peak, len(r.m))
	}
	r.put(id(burst), []byte{1})
	if c := cap(r.fifo); c > 4*(len(r.fifo)-r.head)+64 {
		t.Errorf("the queue keeps room for %d keys, %d queued", c, len(r.fifo)-r.head)
	}
	for i := burst - 10; i <= burst; i++ {
		if _, ok := r.get(id(i)); !ok {
			t.Fatalf("record %d lost when the map was remade", i)
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
