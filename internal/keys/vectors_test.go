package keys

import (
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/keys.json from the implementation")

const vectorsPath = "../../testdata/vectors/keys.json"

// keyVector is one end-to-end case: two identities, an invite, a first
// contact and the first envelope keys of each chain. All byte strings hex.
type keyVector struct {
	Comment string `json:"comment"`
	// Inputs.
	ASignSeed, ADHPriv, AName string
	BSignSeed, BDHPriv, BName string
	PrekeyPriv, InviteSecret  string
	InviteExpiry              uint32
	EphemeralPriv             string
	IntroSlot                 uint16
	P0, Period, Counter       uint32
	LinkBinding               string // a link's handshake hash
	// Outputs.
	AFingerprint, BFingerprint, SafetyNumber string
	InviteHex, Link                          string
	IntroTag, IntroMask                      string
	IdentityKey, SK                          string
	IntroSealKey, IntroReceiptSecret         string
	InitiatorChainKey, ResponderChainKey     string
	// Keys of envelope Counter in Period on the initiator's chain.
	Tag, SealKey, ReceiptSecret string
	// The initiator chain's proof in Period on a link the proving side dialled.
	LinkProof string
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (v *keyVector) compute(t *testing.T) keyVector {
	out := *v
	a, err := IdentityFromSeeds(v.AName, unhex(t, v.ASignSeed), unhex(t, v.ADHPriv))
	if err != nil {
		t.Fatal(err)
	}
	b, err := IdentityFromSeeds(v.BName, unhex(t, v.BSignSeed), unhex(t, v.BDHPriv))
	if err != nil {
		t.Fatal(err)
	}
	pkPriv, _ := ecdh.X25519().NewPrivateKey(unhex(t, v.PrekeyPriv))
	ephPriv, _ := ecdh.X25519().NewPrivateKey(unhex(t, v.EphemeralPriv))
	pk := &Prekey{Priv: pkPriv, Expiry: v.InviteExpiry}
	copy(pk.Secret[:], unhex(t, v.InviteSecret))
	inv := NewInvite(b, pk)
	out.AFingerprint, out.BFingerprint = a.Public().Fingerprint(), b.Public().Fingerprint()
	out.SafetyNumber = SafetyNumber(a.Public(), b.Public())
	out.InviteHex, out.Link = hex.EncodeToString(inv.Marshal()), inv.Link()
	parsed, err := ParseLink(inv.Link())
	if err != nil || parsed.Name != v.BName || !parsed.Identity.Equal(b.Public()) {
		t.Fatalf("invite does not round-trip: %v", err)
	}
	tag := IntroTag(pk.Secret, v.IntroSlot)
	mask := IntroMask(pk.Secret, tag)
	out.IntroTag, out.IntroMask = hex.EncodeToString(tag[:]), hex.EncodeToString(mask[:])
	fc, err := InitiateWith(a, inv, ephPriv)
	if err != nil {
		t.Fatal(err)
	}
	// The responder must arrive at the same keys.
	idk, err := RespondIdentityKey(b, pkPriv, fc.EK)
	if err != nil || idk != fc.IdentityKey {
		t.Fatalf("responder's identity key differs (%v)", err)
	}
	sk, err := Respond(b, pkPriv, a.Public(), fc.EK)
	if err != nil || sk != fc.SK {
		t.Fatalf("responder's session key differs (%v)", err)
	}
	out.IdentityKey, out.SK = hex.EncodeToString(fc.IdentityKey[:]), hex.EncodeToString(fc.SK[:])
	isk, irs := IntroSealKey(fc.SK), IntroReceiptSecret(fc.SK)
	out.IntroSealKey, out.IntroReceiptSecret = hex.EncodeToString(isk[:]), hex.EncodeToString(irs[:])
	ci, cr := NewChain(fc.SK, FromInitiator, v.P0), NewChain(fc.SK, FromResponder, v.P0)
	out.InitiatorChainKey, out.ResponderChainKey = hex.EncodeToString(ci.Key[:]), hex.EncodeToString(cr.Key[:])
	k := ci.At(v.Period)
	tg, sl, rs := k.Tag(v.Counter), k.SealKey(v.Counter), k.ReceiptSecret(v.Counter)
	out.Tag, out.SealKey, out.ReceiptSecret = hex.EncodeToString(tg[:]), hex.EncodeToString(sl[:]), hex.EncodeToString(rs[:])
	proof, ok := ci.LinkProof(v.Period, true, unhex(t, v.LinkBinding))
	if !ok {
		t.Fatal("no link proof for a period at or after the chain's")
	}
	out.LinkProof = hex.EncodeToString(proof[:])
	return out
}

func seedVectors() []keyVector {
	h := func(b byte) string { return hex.EncodeToString(repeat(b, 32)) }
	return []keyVector{
		{Comment: "chain used in its first period", ASignSeed: h(0x01), ADHPriv: h(0x02), AName: "Alice",
			BSignSeed: h(0x03), BDHPriv: h(0x04), BName: "Bob", PrekeyPriv: h(0x05),
			InviteSecret: hex.EncodeToString(repeat(0x06, 16)), InviteExpiry: 1800000000,
			EphemeralPriv: h(0x07), IntroSlot: 42, P0: 20413, Period: 20413, Counter: 0, LinkBinding: h(0x08)},
		{Comment: "chain three periods on, a later counter, non-ASCII name", ASignSeed: h(0x11), ADHPriv: h(0x12), AName: "Zoë",
			BSignSeed: h(0x13), BDHPriv: h(0x14), BName: "Bình", PrekeyPriv: h(0x15),
			InviteSecret: hex.EncodeToString(repeat(0x16, 16)), InviteExpiry: 1900000000,
			EphemeralPriv: h(0x17), IntroSlot: 255, P0: 20413, Period: 20416, Counter: 31, LinkBinding: h(0x18)},
	}
}

func repeat(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestKeyVectors(t *testing.T) {
	if *update {
		var vs []keyVector
		for _, v := range seedVectors() {
			vs = append(vs, v.compute(t))
		}
		b, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []keyVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, want := range vs {
		got := want.compute(t)
		if got != want {
			gb, _ := json.MarshalIndent(got, "", "  ")
			t.Errorf("%s: computed\n%s", want.Comment, gb)
		}
	}
}
