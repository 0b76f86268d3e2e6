package negentropy

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// The differential test runs Grapevine's implementation against an
// independent one: the NIP-77 Negentropy of the nostr-tools npm package
// (version pinned in testdata/js/package-lock.json), driven by
// testdata/js/driver.mjs under node. .ci/run installs node and the
// package; elsewhere the test skips without them, but not under CI=true.
//
// nostr-tools' Negentropy is a correct v1 initiator, but as a responder it
// never answers an IdList: it reports the differences to its own callbacks
// and skips the range, as a NIP-77 client never needs to respond. So:
//
//   - JS initiator, Grapevine responder: the JS side's have and need must be
//     exactly the differences. This is the role nostr-tools is built for.
//   - Grapevine initiator, JS responder: the JS responder's fingerprint,
//     split and frame-limit deferral paths are v1; for the ranges Grapevine
//     sends as IdLists, the differences are learned by the JS side's
//     callbacks instead of being answered. So Grapevine must report no
//     wrong have or need, and what Grapevine and the JS side learned
//     together must be exactly the differences: a range Grapevine took for
//     reconciled wrongly (from a deferral, say) would lose them. The exact
//     answer of a v1 responder to IdLists is covered by TestReferenceResponder.

const jsDir = "testdata/js"

// diffRuns is how many random cases each role runs: about 2.5 s each.
var diffRuns = 200

type jsPeer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startJS starts the driver, or skips the test if node or the package is
// missing (fails instead under CI=true).
func startJS(t *testing.T) *jsPeer {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; .ci/run installs it", what)
		}
		t.Skipf("%s: run npm ci --prefix internal/negentropy/%s", what, jsDir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "nostr-tools", "package.json")); err != nil {
		missing("nostr-tools is not installed")
	}
	cmd := exec.Command(node, "driver.mjs")
	cmd.Dir = jsDir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &jsPeer{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("node driver: %v", err)
		}
	})
	return p
}

type jsReply struct {
	Msg   *string  `json:"msg"`
	Have  []string `json:"have"`
	Need  []string `json:"need"`
	Error string   `json:"error"`
}

func (p *jsPeer) call(req map[string]any) (jsReply, error) {
	var rep jsReply
	b, err := json.Marshal(req)
	if err != nil {
		return rep, fmt.Errorf("failed to encode a request: %w", err)
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return rep, fmt.Errorf("failed to write to the driver: %w", err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("failed to read from the driver: %w", err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("failed to decode %q: %w", line, err)
	}
	if rep.Error != "" {
		return rep, errors.New("nostr-tools: " + rep.Error)
	}
	return rep, nil
}

func (p *jsPeer) reset(items []Item, limit int) error {
	list := make([][2]any, len(items))
	for i, it := range items {
		list[i] = [2]any{it.Timestamp, hex.EncodeToString(it.ID[:])}
	}
	_, err := p.call(map[string]any{"op": "new", "items": list, "limit": limit})
	return err
}

func (p *jsPeer) reconcile(msg []byte) (next []byte, have, need []string, err error) {
	rep, err := p.call(map[string]any{"op": "reconcile", "msg": hex.EncodeToString(msg)})
	if err != nil {
		return nil, nil, nil, err
	}
	if rep.Msg != nil {
		if next, err = hex.DecodeString(*rep.Msg); err != nil {
			return nil, nil, nil, fmt.Errorf("failed to decode the driver's message: %w", err)
		}
	}
	return next, rep.Have, rep.Need, nil
}

// diffCase is one random pair of sets with frame size limits.
type diffCase struct {
	a, b           []Item // a: the initiator's, b: the responder's
	limitA, limitB int    // 0 for no limit
}

func (c diffCase) String() string {
	return fmt.Sprintf("%d vs %d items, limits %d, %d", len(c.a), len(c.b), c.limitA, c.limitB)
}

// randomCase draws sets of 0 to about 5,000 items with random overlaps,
// timestamps that often collide (so bounds carry ID prefixes) and IDs that
// sometimes share leading bytes, and random frame size limits.
func randomCase(r *rand.Rand) diffCase {
	var n int
	switch x := r.IntN(10); {
	case x < 5:
		n = r.IntN(500)
	case x < 9:
		n = r.IntN(2000)
	default:
		n = r.IntN(5000)
	}
	span := 1 + r.IntN(1+n*r.IntN(3))
	items := gen(r, n, func(int) uint64 { return 1_700_000_000 + uint64(r.IntN(span)) })
	if r.IntN(3) == 0 {
		for i := range items {
			if r.IntN(2) == 0 {
				copy(items[i].ID[:], []byte{0xab, 0xcd, 0xef}[:1+r.IntN(3)])
			}
		}
		slices.SortFunc(items, Item.Compare)
		items = slices.CompactFunc(items, func(x, y Item) bool { return x.ID == y.ID })
	}
	var c diffCase
	switch r.IntN(8) {
	case 6, 7:
		// Few items against many: a frame-limited responder defers
		// within the first message's one-item buckets.
		c.a, c.b = fewAgainstMany(r)
	case 0:
		c.a, c.b = clustered(r, sortItems(items))
	case 1:
		c.a, c.b = deal(r, items, 0, 0)
	case 2:
		c.a, c.b = deal(r, items, 1, 0)
	case 3:
		c.a, c.b = deal(r, items, 0, 1)
	default:
		c.a, c.b = deal(r, items, r.Float64()*r.Float64(), r.Float64()*r.Float64())
	}
	limit := func() int {
		switch r.IntN(3) {
		case 0:
			return 0
		case 1:
			return MinFrameSizeLimit + r.IntN(1000)
		}
		return MinFrameSizeLimit + r.IntN(1+r.IntN(60_000))
	}
	c.limitA, c.limitB = limit(), limit()
	return c
}

// jsLimit is the limit to give nostr-tools, which has no "no limit".
func jsLimit(l int) int {
	if l == 0 {
		return 1 << 30
	}
	return l
}

func idSet(t *testing.T, hexes ...[]string) map[[IDSize]byte]bool {
	t.Helper()
	m := make(map[[IDSize]byte]bool)
	for _, hs := range hexes {
		for _, h := range hs {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != IDSize {
				t.Fatalf("bad id %q from the driver", h)
			}
			m[[IDSize]byte(b)] = true
		}
	}
	return m
}

// minus returns the IDs of a not in b.
func minus(a, b []Item) map[[IDSize]byte]bool {
	in := make(map[[IDSize]byte]bool, len(b))
	for _, it := range b {
		in[it.ID] = true
	}
	m := make(map[[IDSize]byte]bool)
	for _, it := range a {
		if !in[it.ID] {
			m[it.ID] = true
		}
	}
	return m
}

func sameSet(t *testing.T, what string, got, want map[[IDSize]byte]bool) {
	t.Helper()
	for id := range got {
		if !want[id] {
			t.Errorf("%s: %x is not in the difference", what, id[:4])
		}
	}
	missing := 0
	for id := range want {
		if !got[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d IDs missing", what, missing, len(want))
	}
}

func TestDifferentialJSInitiator(t *testing.T) {
	js := startJS(t)
	r := newRand(2024)
	for run := range diffRuns {
		c := randomCase(r)
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			if err := js.reset(c.a, jsLimit(c.limitA)); err != nil {
				t.Fatal(err)
			}
			rep, err := js.call(map[string]any{"op": "initiate"})
			if err != nil {
				t.Fatal(err)
			}
			msg, err := hex.DecodeString(*rep.Msg)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := NewResponder(mustStorage(t, c.b), c.limitB)
			if err != nil {
				t.Fatal(err)
			}
			var have, need []string
			for rounds := 0; msg != nil; rounds++ {
				if rounds > 1000 {
					t.Fatalf("%v: no convergence", c)
				}
				reply, err := resp.Reconcile(msg)
				if err != nil {
					t.Fatalf("%v: round %d: responder: %v", c, rounds, err)
				}
				if c.limitB > 0 && len(reply) > c.limitB {
					t.Fatalf("%v: reply of %d bytes", c, len(reply))
				}
				var h, n []string
				if msg, h, n, err = js.reconcile(reply); err != nil {
					t.Fatalf("%v: round %d: %v", c, rounds, err)
				}
				have, need = append(have, h...), append(need, n...)
			}
			sameSet(t, c.String()+": have", idSet(t, have), minus(c.a, c.b))
			sameSet(t, c.String()+": need", idSet(t, need), minus(c.b, c.a))
		})
	}
}

func TestDifferentialJSResponder(t *testing.T) {
	js := startJS(t)
	r := newRand(2025)
	for run := range diffRuns {
		c := randomCase(r)
		t.Run(fmt.Sprint(run), func(t *testing.T) { goInitiator(t, js, c) })
	}
	// Few items against many under a limit near the least: the JS responder
	// goes over its limit within the first message's one-item buckets, and
	// its deferral's Fingerprint covers fewer items than its range. Before
	// the fix of issue 12, 22 of these 300 runs lost differences.
	for run := range 300 {
		c := diffCase{limitA: 0, limitB: MinFrameSizeLimit + r.IntN(1000)}
		c.a, c.b = fewAgainstMany(r)
		if r.IntN(2) == 0 {
			c.limitA = MinFrameSizeLimit + r.IntN(8000)
		}
		t.Run(fmt.Sprint("few/", run), func(t *testing.T) { goInitiator(t, js, c) })
	}
}

// goInitiator reconciles a Grapevine Initiator over c.a with the JS
// responder over c.b and checks what both sides learned.
func goInitiator(t *testing.T, js *jsPeer, c diffCase) {
	if err := js.reset(c.b, jsLimit(c.limitB)); err != nil {
		t.Fatal(err)
	}
	in, err := NewInitiator(mustStorage(t, c.a), c.limitA)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := in.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	var goHave, goNeed [][IDSize]byte
	var jsHave, jsNeed []string // the JS side's: its have is our need
	for rounds := 0; ; rounds++ {
		if rounds > 1000 {
			t.Fatalf("%v: no convergence", c)
		}
		if c.limitA > 0 && len(msg) > c.limitA {
			t.Fatalf("%v: message of %d bytes", c, len(msg))
		}
		reply, h, n, err := js.reconcile(msg)
		if err != nil {
			t.Fatalf("%v: round %d: %v", c, rounds, err)
		}
		jsHave, jsNeed = append(jsHave, h...), append(jsNeed, n...)
		if reply == nil {
			reply = []byte{ProtocolVersion} // nostr-tools returns null for nothing
		}
		next, have, need, done, err := in.Reconcile(reply)
		if err != nil {
			t.Fatalf("%v: round %d: initiator: %v", c, rounds, err)
		}
		goHave, goNeed = append(goHave, have...), append(goNeed, need...)
		if done {
			break
		}
		msg = next
	}
	trueHave, trueNeed := minus(c.a, c.b), minus(c.b, c.a)
	set := func(ids [][IDSize]byte) map[[IDSize]byte]bool {
		m := make(map[[IDSize]byte]bool)
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	for id := range set(goHave) {
		if !trueHave[id] {
			t.Errorf("%v: have %x is wrong", c, id[:4])
		}
	}
	for id := range set(goNeed) {
		if !trueNeed[id] {
			t.Errorf("%v: need %x is wrong", c, id[:4])
		}
	}
	learnedHave := idSet(t, jsNeed)
	for id := range set(goHave) {
		learnedHave[id] = true
	}
	learnedNeed := idSet(t, jsHave)
	for id := range set(goNeed) {
		learnedNeed[id] = true
	}
	sameSet(t, c.String()+": have learned by either side", learnedHave, trueHave)
	sameSet(t, c.String()+": need learned by either side", learnedNeed, trueNeed)
}
