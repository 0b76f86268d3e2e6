package keys

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/keys.json"

// keyVector is one end-to-end case (SPEC §1–§4, §12.6): two identities, an
// invite, a first contact, and a session transcript in which every envelope
// is given byte for byte. All byte strings are hex. The randomness each
// operation draws is listed, in the order drawn, so a second
// implementation can replay it exactly.
type keyVector struct {
	Comment string `json:"comment"`
	// Inputs.
	ASignSeed, ADHPriv, AName string
	BSignSeed, BDHPriv, BName string
	PrekeyPriv, InviteSecret  string
	InviteExpiry              uint32
	IntroSlot                 uint16
	P0                        Period
	// InitiateRandom is what Initiate draws: EK_A (32), the first ratchet
	// private key (32), the ML-KEM seed d || z (64).
	InitiateRandom string
	LinkBinding    string // a link's handshake hash
	// Outputs.
	AFingerprint, BFingerprint, SafetyNumber string
	InviteHex, Link                          string
	IntroTag, IntroMask                      string
	IdentityKey, SK, Binding                 string
	IntroSealKey, IntroReceiptSecret         string
	RootKey, SessionID                       string // RK_0, the session ID
	Steps                                    []stepVector
	// After the transcript: both sides' root key, and the initiator's link
	// proof in the last step's period on a link it dialled.
	FinalRootKey, LinkProof string
	// A re-key request from A to B in period P0 (SPEC §3.3) with ephemeral
	// private key RekeyEphemeral: the pair's base, the tag of slot 0, the
	// mask of EK_A, and the first-contact key SK both sides derive.
	RekeyEphemeral                                    string
	RekeyBase, RekeyTag, RekeyMask, RekeySK, RekeyEKA string
}

// stepVector is one envelope of the transcript: From seals Content at
// Period drawing Random (a new ratchet key (32), the ML-KEM encapsulation
// randomness (32) when answering a key, an ML-KEM seed (64) when
// announcing one, then the salt (8)), giving Envelope (expiry 2000000000,
// hop budget 12); the other side opens it. AckBefore says a receipt of
// the sender's last envelope reached the sender first.
type stepVector struct {
	From      string `json:"from"`
	Period    Period `json:"period"`
	AckBefore bool   `json:"ack_before,omitempty"`
	Content   string `json:"content"`
	Random    string `json:"random"`
	Envelope  string `json:"envelope"`
}

// script is the transcript every vector follows.
var script = []struct {
	from   string
	period Period // relative to P0
	ack    bool
	text   string
	random int // bytes drawn
}{
	{"A", 0, false, "epoch 0, before any answer", 8},
	{"B", 0, false, "accept: epoch 1 answers A's ML-KEM key", 32 + 32 + 8},
	{"A", 0, false, "epoch 2: A's first ratchet step, prefixed", 32 + 8},
	{"A", 0, true, "epoch 2, acknowledged: no prefix", 8},
	{"B", 1, false, "epoch 3, a period later: B announces an ML-KEM key", 32 + 64 + 8},
	{"A", 1, false, "epoch 4 answers it", 32 + 32 + 8},
	{"B", 2, false, "epoch 5, another period on: another ML-KEM key", 32 + 64 + 8},
}

func (v *keyVector) compute(t testing.TB) keyVector {
	out := *v
	out.Steps = nil
	a, err := IdentityFromSeeds(v.AName, testkit.Unhex(t, v.ASignSeed), testkit.Unhex(t, v.ADHPriv))
	if err != nil {
		t.Fatal(err)
	}
	b, err := IdentityFromSeeds(v.BName, testkit.Unhex(t, v.BSignSeed), testkit.Unhex(t, v.BDHPriv))
	if err != nil {
		t.Fatal(err)
	}
	pkPriv, _ := ecdh.X25519().NewPrivateKey(testkit.Unhex(t, v.PrekeyPriv))
	pk := &Prekey{Priv: pkPriv, Expiry: v.InviteExpiry}
	copy(pk.Secret[:], testkit.Unhex(t, v.InviteSecret))
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
	ir := bytes.NewReader(testkit.Unhex(t, v.InitiateRandom))
	fc, err := Initiate(a, inv, v.P0, ir)
	if err != nil || ir.Len() != 0 {
		t.Fatalf("Initiate: %v, %d random bytes left", err, ir.Len())
	}
	idk, err := RespondIdentityKey(b, pkPriv, fc.EK)
	if err != nil || idk != fc.IdentityKey {
		t.Fatalf("responder's identity key differs (%v)", err)
	}
	binding := a.Binding()
	if _, err := ParseBinding(binding); err != nil {
		t.Fatal(err)
	}
	sk, err := Respond(b, pkPriv, a.Public(), fc.EK)
	if err != nil || sk != fc.SK {
		t.Fatalf("responder's first-contact key differs (%v)", err)
	}
	out.IdentityKey, out.SK, out.Binding = hex.EncodeToString(fc.IdentityKey[:]), hex.EncodeToString(fc.SK[:]), hex.EncodeToString(binding)
	isk, irs := IntroSealKey(fc.SK), IntroReceiptSecret(fc.SK)
	out.IntroSealKey, out.IntroReceiptSecret = hex.EncodeToString(isk[:]), hex.EncodeToString(irs[:])
	out.RootKey, out.SessionID = hex.EncodeToString(fc.Session.RK[:]), hex.EncodeToString(fc.Session.ID[:])
	sb, err := NewResponderSession(sk, v.P0, fc.Ratchet, fc.KEMKey)
	if err != nil {
		t.Fatal(err)
	}
	parties := map[string]*party{"A": {name: "A", s: fc.Session, sent: map[envelope.ID]Sent{}}, "B": {name: "B", s: sb, sent: map[envelope.ID]Sent{}}}
	other := map[string]string{"A": "B", "B": "A"}
	last := map[string]*envelope.Envelope{}
	for i, st := range script {
		from, to := parties[st.from], parties[other[st.from]]
		p := v.P0 + st.period
		if st.ack {
			from.receipt(last[st.from])
		}
		random := testkit.Stream(v.Comment+" step "+string(rune('0'+i)), st.random)
		rr := bytes.NewReader(random)
		e, sent, err := from.s.Seal(p, []byte(st.text), 2000000000, 12, rr)
		if err != nil || rr.Len() != 0 {
			t.Fatalf("step %d: %v, %d random bytes left", i, err, rr.Len())
		}
		from.sent[e.ID()] = sent
		last[st.from] = e
		mustOpen(t, to, e, p, st.text)
		out.Steps = append(out.Steps, stepVector{From: st.from, Period: p, AckBefore: st.ack,
			Content: hex.EncodeToString([]byte(st.text)), Random: hex.EncodeToString(random), Envelope: hex.EncodeToString(e.Marshal())})
	}
	if parties["A"].s.RK != parties["B"].s.RK {
		t.Fatal("the two sides end with different roots")
	}
	out.FinalRootKey = hex.EncodeToString(parties["A"].s.RK[:])
	lastP := v.P0 + script[len(script)-1].period
	key, ok := parties["A"].s.ProofKey(lastP)
	if !ok {
		t.Fatal("no proof key")
	}
	low := a.Public().Fingerprint() < b.Public().Fingerprint()
	proof := LinkProofWith(key, true, low, testkit.Unhex(t, v.LinkBinding))
	out.LinkProof = hex.EncodeToString(proof[:])
	out.computeRekey(t, a, b)
	return out
}

func (out *keyVector) computeRekey(t testing.TB, a, b *Identity) {
	base, err := RekeyBase(a, b.Public())
	if err != nil {
		t.Fatal(err)
	}
	if other, _ := RekeyBase(b, a.Public()); other != base {
		t.Fatal("the two sides disagree on the re-key base")
	}
	tag := RekeyTag(base, a.Public(), out.P0, 0)
	mask := RekeyMask(base, tag)
	eph, err := ecdh.X25519().NewPrivateKey(testkit.Unhex(t, out.RekeyEphemeral))
	if err != nil {
		t.Fatal(err)
	}
	var ek [32]byte
	copy(ek[:], eph.PublicKey().Bytes())
	sk, err := rekeyKey(eph, a.DH, a.Public(), b.Public(), ek, true)
	if err != nil {
		t.Fatal(err)
	}
	if theirs, err := RespondRekey(b, a.Public(), ek); err != nil || theirs != sk {
		t.Fatalf("the contact derives another re-key SK (%v)", err)
	}
	out.RekeyBase, out.RekeyTag, out.RekeyMask = hex.EncodeToString(base[:]), hex.EncodeToString(tag[:]), hex.EncodeToString(mask[:])
	out.RekeySK, out.RekeyEKA = hex.EncodeToString(sk[:]), hex.EncodeToString(ek[:])
}

func seedVectors() []keyVector {
	h := func(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	return []keyVector{
		{Comment: "first contact and a transcript of seven envelopes", ASignSeed: h(0x01), ADHPriv: h(0x02), AName: "Alice",
			BSignSeed: h(0x03), BDHPriv: h(0x04), BName: "Bob", PrekeyPriv: h(0x05),
			InviteSecret: hex.EncodeToString(bytes.Repeat([]byte{0x06}, 16)), InviteExpiry: 1800000000,
			IntroSlot: 42, P0: 20413, InitiateRandom: hex.EncodeToString(testkit.Stream("initiate 1", 128)), LinkBinding: h(0x08),
			RekeyEphemeral: h(0x09)},
		{Comment: "non-ASCII names, a later period", ASignSeed: h(0x11), ADHPriv: h(0x12), AName: "Zoë",
			BSignSeed: h(0x13), BDHPriv: h(0x14), BName: "Bình", PrekeyPriv: h(0x15),
			InviteSecret: hex.EncodeToString(bytes.Repeat([]byte{0x16}, 16)), InviteExpiry: 1900000000,
			IntroSlot: 255, P0: 21000, InitiateRandom: hex.EncodeToString(testkit.Stream("initiate 2", 128)), LinkBinding: h(0x18),
			RekeyEphemeral: h(0x19)},
	}
}

func TestKeyVectors(t *testing.T) {
	vs := testkit.Vectors(t, vectorsPath, func() []keyVector {
		var vs []keyVector
		for _, v := range seedVectors() {
			vs = append(vs, v.compute(t))
		}
		return vs
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, want := range vs {
		got := want.compute(t)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			gi, _ := json.MarshalIndent(got, "", "  ")
			t.Errorf("%s: computed\n%s", want.Comment, gi)
		}
	}
}
