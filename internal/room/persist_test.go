package room

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestRecordsWithKeysAsArraysStillLoad: records written before keys were
// stored as base64 strings (JSON arrays of 32 numbers) still load, into a
// room that opens what the others send and seals what they open, and that
// stores itself the new way.
func TestRecordsWithKeysAsArraysStillLoad(t *testing.T) {
	g := newGroup(t, "legacy", "Alice", "Bob", "Carol")
	bob, carol := g.by("Bob"), g.by("Carol")
	mustOpen(t, bob, seal(t, g, g.by("Alice"), "one"), "one")
	now, err := bob.room.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	old, converted := keysAsArrays(t, now)
	if converted < 6 { // 3 keys per sender, two senders in Bob's epoch
		t.Fatalf("only %d keys found to write the old way", converted)
	}
	r, err := Unmarshal(old)
	if err != nil {
		t.Fatalf("an old record does not load: %v", err)
	}
	bob.room = r
	mustOpen(t, bob, seal(t, g, carol, "two"), "two")
	mustOpen(t, carol, seal(t, g, bob, "three"), "three")
	again, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(old) <= len(now) {
		t.Fatalf("the old way took %d bytes, the new %d", len(old), len(now))
	}
	if _, n := keysAsArrays(t, again); n < converted { // stored the new way: keys as base64
		t.Fatalf("stored again with %d keys as base64, want %d", n, converted)
	}
}

// keysAsArrays rewrites a record's keys the way records were written
// before: JSON arrays of numbers.
func keysAsArrays(t *testing.T, b []byte) ([]byte, int) {
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	converted := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "key" || k == "Msg" || k == "Tag" || k == "ck") {
					raw, err := base64.StdEncoding.DecodeString(s)
					if err != nil || len(raw) != 32 {
						t.Fatalf("%s = %q is not a base64 key", k, s)
					}
					nums := make([]any, 32)
					for i, c := range raw {
						nums[i] = float64(c)
					}
					v[k] = nums
					converted++
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(rec)
	old, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return old, converted
}
