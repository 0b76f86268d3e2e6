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
		case recentBytes/1000 + 2: // the first places are consumed
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
		total += len(rec.v)
	}
	if total != r.bytes || len(r.fifo)-r.head < len(r.m) {
		t.Errorf("accounting: %d bytes counted, %d held; %d queued for %d records", r.bytes, total, len(r.fifo)-r.head, len(r.m))
	}
	r.drop(id(n - 1))
	if _, ok := r.get(id(n - 1)); ok {
		t.Error("dropped record still returned")
	}
}
