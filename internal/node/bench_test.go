package node

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// BenchmarkRecognise measures finding one's own envelope among the tags of
// N contacts, each after first contact and a round trip: the peer's
// current epoch (Window tags), its next one (NextWindow) and the re-key
// tags of the retention window. The cost is one map lookup, so ns/op must
// not grow with N.
func BenchmarkRecognise(b *testing.B) {
	for _, contacts := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("contacts=%d", contacts), func(b *testing.B) {
			const now = 20413
			self, _ := keys.NewIdentity("Me", rand.Reader)
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			ix := newIndex()
			var probe [16]byte
			for i := range contacts {
				mine, theirs, peer := conversation(b, self, now-8)
				base, _ := keys.RekeyBase(self, peer)
				c := &contactRecord{Fingerprint: fmt.Sprint(i), State: StateActive, RekeyBase: base, Sign: peer.Sign, DH: peer.DH[:],
					Sessions: []*peerSession{{S: mine}}}
				ix.setContact(c, now-8, now+1)
				if i == contacts/2 {
					e, _, err := theirs.Seal(now, []byte("probe"), 2000000000, 12, rand.Reader)
					if err != nil {
						b.Fatal(err)
					}
					probe = e.Tag
				}
			}
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			var miss [16]byte
			rand.Read(miss[:])
			for b.Loop() {
				if _, ok := ix.lookup(probe); !ok {
					b.Fatal("own envelope not recognised")
				}
				if _, ok := ix.lookup(miss); ok {
					b.Fatal("random tag recognised")
				}
			}
			b.ReportMetric(float64(ix.len())/float64(contacts), "tags/contact")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(contacts), "heap-bytes/contact")
		})
	}
}

// conversation makes a session pair with a new identity as two people have
// it after first contact at period p and one round trip there (the peer
// accepted, both stepped): mine is my side, theirs the peer's.
func conversation(tb testing.TB, self *keys.Identity, p keys.Period) (mine, theirs *keys.Session, peer keys.Public) {
	tb.Helper()
	other, _ := keys.NewIdentity("Peer", rand.Reader)
	priv, _ := keys.NewX25519(rand.Reader)
	pk := &keys.Prekey{Priv: priv, Expiry: 2000000000}
	inv := keys.NewInvite(self, pk)
	fc, err := keys.Initiate(other, inv, p, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	sk, _ := keys.Respond(self, priv, other.Public(), fc.EK)
	mine, err = keys.NewResponderSession(sk, p, fc.Ratchet, fc.KEMKey)
	if err != nil {
		tb.Fatal(err)
	}
	theirs = fc.Session
	pass := func(from, to **keys.Session) {
		e, _, err := (*from).Seal(p, []byte("x"), 2000000000, 12, rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		for _, sl := range (*to).Expected() {
			if sl.Tag == e.Tag {
				s, _, err := (*to).Open(e, sl, p)
				if err != nil {
					tb.Fatal(err)
				}
				*to = s
				return
			}
		}
		tb.Fatal("tag not expected")
	}
	pass(&mine, &theirs)
	pass(&theirs, &mine)
	pass(&mine, &theirs)
	return mine, theirs, other.Public()
}

// BenchmarkIngestCarried measures durable ingest of envelopes carried for
// others (the common case for a relay): parse, dedupe, recognise, seal at
// rest and commit, in batches as an import does.
func BenchmarkIngestCarried(b *testing.B) {
	clk := newTestClock()
	n, err := Init(filepath.Join(b.TempDir(), "home"), []byte("pw"), "Relay", DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	const batch = importBatch
	make := func() [][]byte {
		out := make([][]byte, batch)
		for i := range out {
			s := envelope.Sealing{Expiry: uint32(clk.Now().Add(time.Hour).Unix()), Hops: 5}
			rand.Read(s.Key[:])
			rand.Read(s.Tag[:])
			e, _ := envelope.Seal(s, []byte("a carried message of about a hundred characters, padded into the 128-byte bucket"))
			out[i] = e.Marshal()
		}
		return out
	}
	b.ResetTimer()
	total := 0
	for b.Loop() {
		b.StopTimer()
		envs := make()
		b.StartTimer()
		rep, err := n.Ingest(envs)
		if err != nil || rep.New != batch {
			b.Fatalf("ingest: %+v, %v", rep, err)
		}
		total += batch
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkWireSizes reports the sizes SPEC §5 promises, from real nodes:
// a request with its ML-KEM key and the accept that answers it (both within
// the 2,048 bucket), a 100-character text that opens a ratchet step (≤ 256
// bytes) and one that carries no key (≤ 192).
func BenchmarkWireSizes(b *testing.B) {
	var request, accept, step, plain int
	size := func(n *Node, id string) int {
		var s int
		n.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
			if envelope.ComputeID(raw).String() == id {
				s = len(raw)
			}
			return nil
		})
		return s
	}
	own := func(n *Node, kind string) int {
		var s int
		n.st.View(func(tx *store.Tx) error {
			return tx.ForEach(colMessages, func(v []byte, _ time.Time) error {
				var m messageRecord
				if jsonUnmarshal(v, &m) == nil && m.Kind == kind {
					s = size(n, m.ID)
				}
				return nil
			})
		})
		return s
	}
	text := strings.Repeat("x", 100)
	for b.Loop() {
		clk := newTestClock()
		dir := b.TempDir()
		alice, _ := Init(filepath.Join(dir, "a"), []byte("pw"), "Alice", DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF()})
		bob, _ := Init(filepath.Join(dir, "b"), []byte("pw"), "Bob", DefaultConfig, Options{Now: clk.Now, KDF: store.TestKDF()})
		self, _ := bob.Self()
		if _, err := alice.AddContact(self.Link, ""); err != nil {
			b.Fatal(err)
		}
		request = own(alice, kindRequest)
		handOverAll(b, alice, bob)
		if _, err := bob.Accept("Alice"); err != nil {
			b.Fatal(err)
		}
		accept = own(bob, kindAccept)
		handOverAll(b, bob, alice)
		m, _ := alice.Send("Bob", text)
		step = size(alice, m.ID)
		handOverAll(b, alice, bob)
		handOverAll(b, bob, alice)
		m, _ = alice.Send("Bob", text)
		plain = size(alice, m.ID)
		alice.Close()
		bob.Close()
	}
	if request > envelope.HeaderSize+2048+envelope.Overhead || accept > envelope.HeaderSize+2048+envelope.Overhead || step > 256 || plain > 192 {
		b.Fatalf("sizes over their limits: request %d, accept %d, step %d, text %d", request, accept, step, plain)
	}
	b.ReportMetric(float64(request), "request-bytes")
	b.ReportMetric(float64(accept), "accept-bytes")
	b.ReportMetric(float64(step), "text-with-step-bytes")
	b.ReportMetric(float64(plain), "text-bytes")
}

// handOverAll ingests everything from holds into to.
func handOverAll(b *testing.B, from, to *Node) {
	b.Helper()
	var raws [][]byte
	from.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
		raws = append(raws, append([]byte(nil), raw...))
		return nil
	})
	if _, err := to.Ingest(raws); err != nil {
		b.Fatal(err)
	}
}
