package node

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

func TestContactsRecogniseEachOtherOnALink(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	binding := make([]byte, 32)
	rand.Read(binding)
	fromAlice, err := alice.LinkProofs(binding, true) // Alice dialled
	if err != nil {
		t.Fatal(err)
	}
	if len(fromAlice) != LinkHelloSize {
		t.Fatalf("%d bytes of proofs; want %d", len(fromAlice), LinkHelloSize)
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
	if bytes.Contains(again, fromAlice[:LinkProofSize]) {
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

// TestHelloSizeCountsNoContacts is the passive listener's view of a Hello
// (SPEC §13.2): its length is the same with 1 contact as with 41, so it does
// not count them; with more active contacts than slots, each link carries a
// fresh random choice, so a contact is recognised on most links.
func TestHelloSizeCountsNoContacts(t *testing.T) {
	_, alice, bob, _ := friendsAndCarrier(t)
	binding := make([]byte, 32)
	one, err := alice.LinkProofs(binding, true)
	if err != nil {
		t.Fatal(err)
	}
	self := alice.id
	err = alice.st.Update(func(tx *store.Tx) error {
		for i := range 40 {
			mine, _, peer := conversation(t, self, keys.PeriodOf(alice.clk.Now())-1)
			c := &contactRecord{Fingerprint: fmt.Sprintf("fake%02d", i), Name: fmt.Sprintf("Fake %d", i), State: StateActive,
				Sign: peer.Sign, DH: peer.DH[:], Added: alice.clk.Now(), Sessions: []*peerSession{{S: mine}}}
			if err := saveContact(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	alice.recog = nil
	recognised := 0
	const links = 50
	for range links {
		rand.Read(binding)
		many, err := alice.LinkProofs(binding, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(many) != len(one) || len(many) != LinkHelloSize {
			t.Fatalf("Hello of %d bytes with 41 contacts, %d with 1", len(many), len(one))
		}
		if c, ok, _ := bob.RecogniseLink(binding, true, many); ok && c.Name == "Alice" {
			recognised++
		}
	}
	// Bob is in Alice's slots with probability LinkProofSlots/41 per link.
	want := float64(links*LinkProofSlots) / 41
	t.Logf("Bob recognised Alice on %d of %d links (expected %.0f)", recognised, links, want)
	if float64(recognised) < want/2 || recognised == links {
		t.Fatalf("recognised on %d of %d links; want about %.0f", recognised, links, want)
	}
}

// TestRecognitionSharesProvers: my proof key for a contact is one of the
// keys I check the contact's proofs with, and the two share one prover (an
// HMAC key schedule each, kept on every node of a simulated city).
func TestRecognitionSharesProvers(t *testing.T) {
	_, alice, _, _ := friendsAndCarrier(t)
	alice.mu.Lock()
	defer alice.mu.Unlock()
	rc, err := alice.recognition()
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.send) == 0 {
		t.Fatal("no proof keys")
	}
	for i, lp := range rc.send {
		shared := false
		for _, r := range rc.recv {
			shared = shared || r.key == lp && rc.contacts[r.contact].Fingerprint == rc.sendTo[i]
		}
		if !shared {
			t.Errorf("the prover for %s is not among its checking keys", rc.sendTo[i])
		}
	}
}

// TestRecognitionRefreshMatchesRebuild: every message sent or opened
// changes its contact's sessions, and the node refreshes that contact's
// recognition keys in place instead of rebuilding all of them from the
// store. What the refreshed keys prove and check must be exactly what a
// rebuild gives, in the same order (a Hello's slots are picked by index),
// and a refresh must really happen (else the test would prove nothing).
func TestRecognitionRefreshMatchesRebuild(t *testing.T) {
	clk, alice, bob, carol := friendsAndCarrier(t)
	befriend(t, alice, carol)
	binding := make([]byte, 32)
	rand.Read(binding)
	for round := range 6 {
		for _, n := range []*testNode{alice, bob} {
			n.mu.Lock()
			_, err := n.recognition()
			n.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		kept := alice.recog
		exchange(t, alice, bob, fmt.Sprintf("round %d", round))
		if round%2 == 1 {
			exchange(t, alice, carol, fmt.Sprintf("round %d", round))
		}
		alice.mu.Lock()
		if alice.recog != kept {
			alice.mu.Unlock()
			t.Fatalf("round %d: Alice's recognition keys were dropped, not refreshed", round)
		}
		refreshed := alice.recog
		alice.recog = nil
		rebuilt, err := alice.recognition()
		alice.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(refreshed.contacts, rebuilt.contacts) || !slices.Equal(refreshed.sendTo, rebuilt.sendTo) {
			t.Fatalf("round %d: refreshed contacts %v / %v, rebuilt %v / %v", round,
				refreshed.contacts, refreshed.sendTo, rebuilt.contacts, rebuilt.sendTo)
		}
		for i := range rebuilt.send {
			if a, b := refreshed.send[i].Proof(true, true, binding), rebuilt.send[i].Proof(true, true, binding); a != b {
				t.Fatalf("round %d: proof %d for %s differs after a refresh", round, i, rebuilt.sendTo[i])
			}
		}
		if len(refreshed.recv) != len(rebuilt.recv) {
			t.Fatalf("round %d: %d check keys refreshed, %d rebuilt", round, len(refreshed.recv), len(rebuilt.recv))
		}
		for i, r := range rebuilt.recv {
			f := refreshed.recv[i]
			if f.contact != r.contact || f.key.Proof(false, true, binding) != r.key.Proof(false, true, binding) {
				t.Fatalf("round %d: check key %d differs after a refresh", round, i)
			}
		}
		clk.Advance(time.Hour)
	}
}
