package negentropy

import (
	"fmt"
	"os"
	"testing"
)

func TestTune(t *testing.T) {
	if os.Getenv("TUNE") == "" {
		t.Skip()
	}
	type fx struct{ a, b *Storage }
	fxs := map[int][]fx{}
	for _, d := range []int{10, 100, 1000} {
		for seed := range uint64(2) {
			a, b := fixture(t, seed+10, 100_000, d)
			fxs[d] = append(fxs[d], fx{a, b})
		}
	}
	{
		res := reconcileStorage(t, fxs[100][0].a, fxs[100][0].b, 0, 0, nil, nil)
		for i, m := range res.msgs {
			t.Logf("msg %d: %d bytes", i, len(m))
		}
	}
	for _, first := range []int{200, 400, 800} {
		for _, idl := range []int{1, 2, 3} {
			for _, last := range []int{3, 5, 7} {
				p := policy{firstItems: first, maxFirst: 4096, idList: idl, lateIDList: 8, lastLevel: last, maxBuckets: 16}
				line := ""
				for _, d := range []int{10, 100, 1000} {
					w, rt := 0, 0
					for _, f := range fxs[d] {
						res := reconcileStorage(t, f.a, f.b, 0, 0, &p, &p)
						w += res.wire
						rt = max(rt, res.roundTrips)
					}
					line += " " + itoa(w/len(fxs[d])/d) + "B/d " + itoa(rt) + "rt |"
				}
				t.Logf("first=%d idl=%d last=%d: %s", first, idl, last, line)
			}
		}
	}
}

func itoa(n int) string {
	return fmtInt(n)
}

func fmtInt(n int) string { return fmt.Sprint(n) }
