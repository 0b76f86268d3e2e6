package node

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"
)

func TestContactsRecogniseEachOtherOnALink(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	binding := make([]byte, 32)
	rand.Read(binding)
	fromAlice, err := alice.LinkProofs(binding, true) // Alice dialled
	if err != nil {
		t.Fatal(err)
	}
	if len(fromAlice) != MinLinkProofs*linkProofSize {
		t.Fatalf("%d bytes of proofs; want the padded minimum", len(fromAlice))
	}
	c, ok, err := bob.RecogniseLink(binding, true, fromAlice)
	if err != nil || !ok || c.Name != "Alice" {
		t.Fatalf("Bob recognised %+v, %v, %v; want Alice", c, ok, err)
	}
	fromBob, _ := bob.LinkProofs(binding, false)
	if c, ok, _ := alice.RecogniseLink(binding, false, fromBob); !ok || c.Name != "Bob" {
		t.Fatalf("Alice recognised %+v; want Bob", c)
	}
	// A stranger recognises nobody, and is recognised by nobody.
	if _, ok, _ := carol.RecogniseLink(binding, true, fromAlice); ok {
		t.Fatal("a stranger recognised Alice")
	}
	fromCarol, _ := carol.LinkProofs(binding, true)
	if _, ok, _ := bob.RecogniseLink(binding, true, fromCarol); ok {
		t.Fatal("Bob recognised a stranger")
	}
	// Proofs are bound to the link and to the side that sent them.
	other := bytes.Clone(binding)
	other[0] ^= 1
	if _, ok, _ := bob.RecogniseLink(other, true, fromAlice); ok {
		t.Fatal("proofs from one link worked on another")
	}
	if _, ok, _ := alice.RecogniseLink(binding, true, fromAlice); ok {
		t.Fatal("Alice's own proofs, reflected back, matched")
	}
	// Two links give unrelated proofs.
	again, _ := alice.LinkProofs(other, true)
	if bytes.Contains(again, fromAlice[:linkProofSize]) {
		t.Fatal("proofs repeat across links")
	}
	// A day later (clocks a period apart) they still recognise each other.
	clk.Advance(24 * time.Hour)
	fromAlice, _ = alice.LinkProofs(binding, true)
	if _, ok, _ := bob.RecogniseLink(binding, true, fromAlice); !ok {
		t.Fatal("not recognised a period later")
	}
	if _, _, err := bob.RecogniseLink(binding, true, fromAlice[:17]); err == nil {
		t.Fatal("ragged proofs accepted")
	}
}
