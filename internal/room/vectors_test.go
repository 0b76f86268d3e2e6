package room

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
)

const vectorsPath = "../../testdata/vectors/room.json"

// roomVector is one case of SPEC §15.10: Alice creates a group, adds Bob
// and sends one post; every byte string is hex. Random is all the
// randomness drawn, in order: the group ID (32), Alice's room key seed
// (32), the secret of epoch 0 (32), Bob's room key seed (32), the secret
// of epoch 1 (32), the post's salt (8) and commitment secret (16).
// Regenerate with
//
//	go test ./internal/room -run Vectors -update
type roomVector struct {
	Comment                   string
	ASignSeed, ADHPriv, AName string
	BSignSeed, BDHPriv, BName string
	GroupName                 string
	Start                     keys.Period
	Random                    string
	Content                   string // the post's content (SPEC §5.3), hex
	Expiry                    uint32
	// Outputs.
	GroupID, Create, Epoch0    string
	Add, Epoch1, Welcome       string
	Base1, Mask1, Period1      string   // epoch 1's base, mask key and P at Start
	AliceChain1, AliceTagChain string   // Alice's C_0 and T_0 in epoch 1
	AliceTags                  []string // her first three tags
	Envelope                   string   // Alice's post, sealed at Start
}

func TestRoomVectors(t *testing.T) {
	seed := []roomVector{{
		Comment:   "Alice creates a group, adds Bob, posts once",
		ASignSeed: hex.EncodeToString(testkit.Stream("room alice sign", 32)),
		ADHPriv:   hex.EncodeToString(testkit.Stream("room alice dh", 32)),
		AName:     "Alice",
		BSignSeed: hex.EncodeToString(testkit.Stream("room bob sign", 32)),
		BDHPriv:   hex.EncodeToString(testkit.Stream("room bob dh", 32)),
		BName:     "Bob",
		GroupName: "Rescue team",
		Start:     20000,
		Random:    hex.EncodeToString(testkit.Stream("room vector random", 5*32+8+16)),
		Content:   hex.EncodeToString(append([]byte{1, 0x65, 0x53, 0xf1, 0x00}, "Meet at the school at noon."...)),
		Expiry:    2000000000,
	}}
	vs := testkit.Vectors(t, vectorsPath, func() []roomVector {
		out := make([]roomVector, len(seed))
		for i, v := range seed {
			out[i] = computeVector(t, v)
		}
		return out
	})
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		got := computeVector(t, v)
		checkVector(t, v, got)
	}
}

func checkVector(t *testing.T, want, got roomVector) {
	t.Helper()
	pairs := []struct{ name, want, got string }{
		{"GroupID", want.GroupID, got.GroupID}, {"Create", want.Create, got.Create}, {"Epoch0", want.Epoch0, got.Epoch0},
		{"Add", want.Add, got.Add}, {"Epoch1", want.Epoch1, got.Epoch1}, {"Welcome", want.Welcome, got.Welcome},
		{"Base1", want.Base1, got.Base1}, {"Mask1", want.Mask1, got.Mask1}, {"Period1", want.Period1, got.Period1},
		{"AliceChain1", want.AliceChain1, got.AliceChain1}, {"AliceTagChain", want.AliceTagChain, got.AliceTagChain},
		{"Envelope", want.Envelope, got.Envelope},
	}
	for _, p := range pairs {
		if p.want != p.got || p.want == "" {
			t.Errorf("%s: got %s, want %s", p.name, p.got, p.want)
		}
	}
	if len(want.AliceTags) != 3 || !bytes.Equal([]byte(want.AliceTags[0]+want.AliceTags[1]+want.AliceTags[2]),
		[]byte(got.AliceTags[0]+got.AliceTags[1]+got.AliceTags[2])) {
		t.Errorf("tags: got %v, want %v", got.AliceTags, want.AliceTags)
	}
}

// computeVector runs the case from its inputs. Along the way Bob joins from
// the welcome bytes and opens the post bytes, and the encoded changes
// parse back to themselves.
func computeVector(t *testing.T, v roomVector) roomVector {
	t.Helper()
	alice, err := keys.IdentityFromSeeds(v.AName, testkit.Unhex(t, v.ASignSeed), testkit.Unhex(t, v.ADHPriv))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := keys.IdentityFromSeeds(v.BName, testkit.Unhex(t, v.BSignSeed), testkit.Unhex(t, v.BDHPriv))
	if err != nil {
		t.Fatal(err)
	}
	rnd := bytes.NewReader(testkit.Unhex(t, v.Random))
	r, err := Create(alice, v.GroupName, v.Start, rnd)
	if err != nil {
		t.Fatal(err)
	}
	bobRK, err := NewRoomKey(rnd)
	if err != nil {
		t.Fatal(err)
	}
	add := &Change{Kind: KindAdd, Member: NewMember(bob, r.Group, bobRK.Public().(ed25519.PublicKey))}
	h1, err := r.Commit(add, v.Start, rnd)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Welcome(h1, true)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Seal(v.Start, testkit.Unhex(t, v.Content), v.Expiry, 12, rnd)
	if err != nil || rnd.Len() != 0 {
		t.Fatalf("seal: %v, %d random bytes left", err, rnd.Len())
	}
	// Bob, from bytes alone.
	bobRoom, err := Join(mustWelcome(t, w.Marshal()), bob, bobRK, selfOf(alice))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bobRoom.Open(parse(t, e.Marshal()), v.Start)
	if err != nil || !bytes.Equal(m.Content, testkit.Unhex(t, v.Content)) {
		t.Fatalf("Bob cannot open the post: %v", err)
	}
	for _, h := range r.Chain() {
		c, _ := r.Change(h)
		back, err := ParseChange(c.Marshal())
		if err != nil || back.Hash() != h {
			t.Fatalf("a change does not parse back to itself: %v", err)
		}
	}
	ep := r.epochs[h1]
	base := epochBase(ep.secret, r.Group, h1)
	ac := senderChain(base, [32]byte(r.roomKey.Public().(ed25519.PublicKey)))
	out := v
	create, _ := r.Change(r.Genesis)
	out.GroupID = hex.EncodeToString(r.Group[:])
	out.Create, out.Epoch0 = hex.EncodeToString(create.Marshal()), hex.EncodeToString(r.Genesis[:])
	out.Add, out.Epoch1 = hex.EncodeToString(add.Marshal()), hex.EncodeToString(h1[:])
	out.Welcome = hex.EncodeToString(w.Marshal())
	out.Base1, out.Mask1 = hex.EncodeToString(base[:]), hex.EncodeToString(ep.mask[:])
	pk, _ := ep.periods.At(v.Start)
	out.Period1 = hex.EncodeToString(pk[:])
	out.AliceChain1, out.AliceTagChain = hex.EncodeToString(ac.Msg[:]), hex.EncodeToString(ac.Tag[:])
	out.AliceTags = nil
	for range 3 {
		_, tag := ac.step()
		out.AliceTags = append(out.AliceTags, hex.EncodeToString(tag[:]))
	}
	if out.AliceTags[0] != hex.EncodeToString(e.Tag[:]) {
		t.Fatal("the post does not bear Alice's first tag")
	}
	out.Envelope = hex.EncodeToString(e.Marshal())
	return out
}

func mustWelcome(t *testing.T, b []byte) *Welcome {
	t.Helper()
	w, err := ParseWelcome(b)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
