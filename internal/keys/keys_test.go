package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

func testIdentity(t testing.TB, name string) *Identity {
	id, err := NewIdentity(name, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testInvite(t testing.TB, id *Identity) (*Invite, *Prekey) {
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pk := &Prekey{Priv: priv, Expiry: 2000000000}
	rand.Read(pk.Secret[:])
	return NewInvite(id, pk), pk
}

func TestSafetyNumberIsSymmetric(t *testing.T) {
	a, b, c := testIdentity(t, "a").Public(), testIdentity(t, "b").Public(), testIdentity(t, "c").Public()
	if SafetyNumber(a, b) != SafetyNumber(b, a) {
		t.Fatal("safety number depends on who computes it")
	}
	if SafetyNumber(a, b) == SafetyNumber(a, c) {
		t.Fatal("different pairs share a safety number")
	}
	if n := SafetyNumber(a, b); len(strings.ReplaceAll(n, " ", "")) != 30 {
		t.Fatalf("safety number %q is not 30 digits", n)
	}
}

func TestInviteRejectsTampering(t *testing.T) {
	inv, _ := testInvite(t, testIdentity(t, "Bob"))
	raw := inv.Marshal()
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if _, err := ParseInvite(bad); err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
	}
	if _, err := ParseLink("https://example.invalid/x"); err == nil {
		t.Fatal("accepted a non-grapevine link")
	}
	got, err := ParseLink("  " + strings.ToUpper(inv.Link()) + "\n")
	if err != nil || got.Prekey != inv.Prekey {
		t.Fatalf("upper-case link (as in the QR code) does not parse: %v", err)
	}
}

func TestReceiveWindowSlides(t *testing.T) {
	var r RecvChain
	rand.Read(r.Key[:])
	r.Period = 100
	expected := func(n uint32) bool {
		tag := r.At(100).Tag(n)
		for _, s := range r.Expected(100, 100) {
			if s.Tag == tag {
				return true
			}
		}
		return false
	}
	if !expected(0) || !expected(Window-1) || expected(Window) {
		t.Fatal("initial window is not [0, Window)")
	}
	r.MarkSeen(100, 5)
	if expected(5) {
		t.Fatal("a seen counter is still expected")
	}
	for n := uint32(0); n < 5; n++ {
		r.MarkSeen(100, n)
	}
	if got := r.seen(100).Next; got != 6 {
		t.Fatalf("after 0..5 arrived, next unseen is %d, want 6", got)
	}
	if !expected(6+Window-1) || expected(5) {
		t.Fatal("window did not slide past arrivals")
	}
}

func TestForgetDeletesOldPeriods(t *testing.T) {
	var r RecvChain
	rand.Read(r.Key[:])
	r.Period = 10
	old := r.At(10).Tag(0)
	r.MarkSeen(10, 0)
	r.Forget(12)
	if r.Period != 12 || len(r.Seen) != 0 {
		t.Fatalf("forget kept %+v", r)
	}
	for _, s := range r.Expected(0, 20) {
		if s.Tag == old || s.Period < 12 {
			t.Fatal("a forgotten period's tag is still derivable")
		}
	}
}

func TestSendChainNeverReusesACounter(t *testing.T) {
	s := SendChain{Chain: Chain{Period: 0}}
	seen := map[[16]byte]bool{}
	for i := range 3 {
		for range 5 {
			k, n := s.Take(timeAt(uint32(100 + i)))
			tag := k.Tag(n)
			if seen[tag] {
				t.Fatal("a tag was used twice")
			}
			seen[tag] = true
		}
	}
	// A clock that goes back does not take the chain back.
	k, _ := s.Take(timeAt(50))
	if k.Period != 102 {
		t.Fatalf("sent in period %d after the clock went back, want 102", k.Period)
	}
}

func FuzzParseLink(f *testing.F) {
	inv, _ := testInvite(f, testIdentity(f, "Bob"))
	f.Add(inv.Link())
	f.Add("grapevine:")
	f.Add("GRAPEVINE:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseLink(s)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes.
		again, err := ParseInvite(got.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), got.Marshal()) {
			t.Fatalf("invite does not round-trip: %v", err)
		}
	})
}

func FuzzParseInvite(f *testing.F) {
	inv, _ := testInvite(f, testIdentity(f, "Bob"))
	f.Add(inv.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseInvite(b)
		if err == nil && !bytes.Equal(got.Marshal(), b) {
			t.Fatal("parsed invite re-encodes differently")
		}
	})
}

func timeAt(period uint32) time.Time {
	return time.Unix(int64(period)*int64(PeriodLength.Seconds()), 0)
}
