package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
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

func jsonOf(s *Session) ([]byte, error) { return json.Marshal(s) }
