package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// These tests attack the claims of SPEC §13 ("What a seized device, a
// relay, an observer and an invite holder can learn"): each plays the
// adversary and shows the attack fails.

// observer records every envelope that passes between nodes, as an
// epidemic relay or a radio listener would.
type observer struct{ seen [][]byte }

func (o *observer) carry(t *testing.T, from, to *testNode) ImportReport {
	t.Helper()
	from.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
		o.seen = append(o.seen, bytes.Clone(raw))
		return nil
	})
	return carry(t, from, to)
}

// opensAny reports which captured envelopes anything in n's store opens:
// its sessions (every tag they can still derive, ignoring expiry), and its
// invite prekeys run against every captured request.
func (o *observer) opensAny(t *testing.T, n *testNode) []string {
	t.Helper()
	var opened []string
	for _, raw := range o.seen {
		e, err := envelope.Parse(raw)
		if err != nil || e.Kind != envelope.KindSealed {
			continue
		}
		if canOpenWithStoredKeys(t, n, raw) || opensAsRequest(t, n, e) {
			opened = append(opened, envelope.ComputeID(raw).String()[:8])
		}
	}
	return opened
}

// opensAsRequest tries every prekey n still stores on e as a first-contact
// envelope, whatever its tag.
func opensAsRequest(t *testing.T, n *testNode, e *envelope.Envelope) bool {
	found := false
	n.st.View(func(tx *store.Tx) error {
		return tx.ForEach(colPrekeys, func(v []byte, _ time.Time) error {
			var r prekeyRecord
			if jsonUnmarshal(v, &r) != nil {
				return nil
			}
			pk, err := r.prekey()
			if err != nil {
				return nil
			}
			masked, err := envelope.IntroMaskedKey(e)
			if err != nil {
				return nil
			}
			ek := keys.MaskEK(masked, r.Secret, e.Tag)
			idk, err := keys.RespondIdentityKey(n.id, pk.Priv, ek)
			if err != nil {
				return nil
			}
			sender, err := envelope.OpenIntroSender(idk, e)
			if err != nil {
				return nil
			}
			ini, err := keys.ParseBinding(sender)
			if err != nil {
				return nil
			}
			sk, _ := keys.Respond(n.id, pk.Priv, ini, ek)
			if _, err := envelope.Open(keys.IntroSealKey(sk), e, envelope.IntroPrefixSize); err == nil {
				found = true
			}
			return nil
		})
	})
	return found
}

// TestSeizedInviteOwnerOpensNothingEarlier (claim S1): Alice adds Bob's
// invite and writes before he answers; Bob accepts; they exchange one more
// round trip. Bob's device is seized with its passphrase, once right after
// the accept and once after the round trip, and the attacker has every
// envelope that ever passed: nothing sent before the seizure opens —
// neither through the sessions nor through the invite's prekey.
func TestSeizedInviteOwnerOpensNothingEarlier(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	var o observer
	mustAdd(t, alice, bob.link())
	mustSend(t, alice, "Bob", "before any answer")
	o.carry(t, alice, bob)
	if _, err := bob.Accept("Alice"); err != nil {
		t.Fatal(err)
	}
	mustSend(t, bob, "Alice", "accepted")
	if opened := o.opensAny(t, bob); len(opened) != 0 {
		t.Fatalf("right after the accept, Bob's store still opens %v (the prekey must be gone)", opened)
	}
	o.carry(t, bob, alice)
	mustSend(t, alice, "Bob", "one more")
	o.carry(t, alice, bob)
	mustSend(t, bob, "Alice", "and back")
	o.carry(t, bob, alice)
	o.carry(t, alice, bob)
	bob.reopen() // seized: unlocked with the passphrase
	if opened := o.opensAny(t, bob); len(opened) != 0 {
		t.Fatalf("after a round trip, Bob's seized store opens %v", opened)
	}
	// Control: the attacker is real — envelopes still on their way open.
	pending := mustSend(t, alice, "Bob", "still on its way")
	if !canOpenWithStoredKeys(t, bob, envelopeOf(t, alice, pending.ID)) {
		t.Fatal("control: Bob's store cannot open what is still on its way to him")
	}
}

// copyHome copies a home's files, as someone imaging a device would.
func copyHome(t *testing.T, tn *testNode) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(tn.home)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(tn.home, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestCopiedStoreIsLockedOutAfterARoundTrip (claim S2): an attacker copies
// Bob's home (and knows the passphrase), keeps the copy running, and feeds
// it every envelope it sees. After the pair exchanges one round trip, the
// copy opens nothing more, recognises nothing more, cannot forge an
// envelope Alice accepts, and cannot make or check Hello proofs.
func TestCopiedStoreIsLockedOutAfterARoundTrip(t *testing.T) {
	clk, alice, bob, _ := friendsAndCarrier(t)
	mustSend(t, alice, "Bob", "a")
	carry(t, alice, bob)
	carry(t, bob, alice)
	bob.Close()
	dir := copyHome(t, bob)
	bob.reopen()
	eve := &testNode{t: t, home: dir, clk: clk}
	n, err := Open(dir, []byte("pw-Bob"), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	eve.Node = n
	t.Cleanup(func() { eve.Close() })
	follow := func(from *testNode) { // the copy sees everything that passes
		carry(t, from, eve)
	}

	// Control: right after the copy, the copy reads what Alice writes.
	mustSend(t, alice, "Bob", "still readable by the copy")
	follow(alice)
	if !hasMessage(t, eve, "still readable by the copy") {
		t.Fatal("control: the copy cannot read what Alice wrote right after the copy")
	}
	// One round trip: Bob answers (a ratchet step of his), Alice answers.
	carry(t, alice, bob)
	mustSend(t, bob, "Alice", "b1")
	follow(bob)
	carry(t, bob, alice)
	mustSend(t, alice, "Bob", "a1")
	follow(alice)
	carry(t, alice, bob)
	carry(t, bob, alice)
	follow(bob)
	follow(alice)

	// After it, in both directions: nothing opens or is recognised.
	for i := range 3 {
		for _, w := range []struct{ from, to *testNode }{{alice, bob}, {bob, alice}} {
			text := w.from.id.Name + " after the round trip " + string(rune('0'+i))
			m := mustSend(t, w.from, w.to.id.Name, text)
			raw := envelopeOf(t, w.from, m.ID)
			e, _ := envelope.Parse(raw)
			if _, ok := eve.idx.lookup(e.Tag); ok {
				t.Fatalf("the copy recognises %q", text)
			}
			follow(w.from)
			if hasMessage(t, eve, text) || canOpenWithStoredKeys(t, eve, raw) {
				t.Fatalf("the copy opens %q", text)
			}
			carry(t, w.from, w.to)
			carry(t, w.to, w.from)
		}
	}
	// A forgery from the copy does not reach Alice's inbox.
	if _, err := eve.Send("Alice", "forged by the copy"); err != nil {
		t.Fatal(err)
	}
	carry(t, eve, alice)
	if hasMessage(t, alice, "forged by the copy") {
		t.Fatal("Alice accepted a message forged by the copy")
	}
	// Hello proofs: Alice does not take the copy for Bob, nor the copy Alice.
	binding := make([]byte, 32)
	rand.Read(binding)
	fromEve, _ := eve.LinkProofs(binding, true)
	if c, ok, _ := alice.RecogniseLink(binding, true, fromEve); ok {
		t.Fatalf("Alice recognises the copy as %s", c.Name)
	}
	fromAlice, _ := alice.LinkProofs(binding, false)
	if _, ok, _ := eve.RecogniseLink(binding, false, fromAlice); ok {
		t.Fatal("the copy recognises Alice on a link")
	}
	fromBob, _ := bob.LinkProofs(binding, true)
	if c, ok, _ := alice.RecogniseLink(binding, true, fromBob); !ok || c.Name != "Bob" {
		t.Fatal("control: Alice does not recognise the real Bob")
	}
}

func hasMessage(t *testing.T, n *testNode, text string) bool {
	for _, m := range messages(t, n) {
		if m.Text == text {
			return true
		}
	}
	return false
}

// TestRestoredHomeNeverRepeatsAKey (claim S4): Alice's home is restored from
// an older copy after she wrote; she writes again from the same counter.
// The two envelopes share a tag (a restored counter repeats it), but not
// the salt, so not the AEAD key nor the receipt commitment; Bob opens both.
func TestRestoredHomeNeverRepeatsAKey(t *testing.T) {
	clk, alice, bob, _ := friendsAndCarrier(t)
	mustSend(t, alice, "Bob", "settle the ratchet")
	carry(t, alice, bob)
	carry(t, bob, alice)
	alice.Close()
	backup := copyHome(t, alice)
	alice.reopen()
	m1 := mustSend(t, alice, "Bob", "before the restore")
	raw1 := envelopeOf(t, alice, m1.ID)
	alice.Close()
	copyBack(t, backup, alice.home)
	alice.reopen()
	m2 := mustSend(t, alice, "Bob", "after the restore: other words")
	raw2 := envelopeOf(t, alice, m2.ID)
	e1, _ := envelope.Parse(raw1)
	e2, _ := envelope.Parse(raw2)
	if e1.Tag != e2.Tag {
		t.Fatal("expected the restored counter to repeat its tag (SPEC says so)")
	}
	if bytes.Equal(e1.Body[:keys.SaltSize], e2.Body[:keys.SaltSize]) || e1.Commit == e2.Commit {
		t.Fatal("a restored home repeated a salt or a receipt commitment")
	}
	// The attack on a repeated (key, nonce): XOR the two ciphertexts and
	// compare with the XOR of the two known plaintexts.
	p1 := paddedText(t, m1, e1)
	p2 := paddedText(t, m2, e2)
	c1, c2 := e1.Body[keys.SaltSize+2:], e2.Body[keys.SaltSize+2:]
	n := min(len(p1), len(p2))
	x, y := make([]byte, n), make([]byte, n)
	for i := range n {
		x[i], y[i] = c1[i]^c2[i], p1[i]^p2[i]
	}
	if bytes.Equal(x, y) {
		t.Fatal("the two envelopes share a keystream: (key, nonce) reused")
	}
	_ = clk
	if rep, _ := bob.Ingest([][]byte{raw1, raw2}); rep.Messages != 1 {
		t.Fatalf("Bob opened %d of the two envelopes sharing a counter: %+v", rep.Messages, rep)
	}
}

// paddedText is the padded plaintext of a text envelope sent without a prefix.
func paddedText(t *testing.T, m Message, e *envelope.Envelope) []byte {
	t.Helper()
	c := &Content{Type: TypeText, Time: uint32(m.Time.Unix()), Text: m.Text}
	const header = keys.SaltSize + 2 // salt, then the period byte and the flags
	p, err := envelope.Pad(c.Marshal(), header)
	if err != nil || len(p)+header+envelope.Overhead != len(e.Body) {
		t.Fatalf("the envelope is not an unprefixed text (%v)", err)
	}
	return p
}

// copyBack restores every file of a copied home.
func copyBack(t *testing.T, from, to string) {
	t.Helper()
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRequestFromAnActiveContactIsAProposal (claim S6): a new request from
// an identity that is already an active contact (someone holding its key,
// or the contact itself) changes nothing until the user accepts it: the
// old session stays in use and what came with the request stays hidden.
func TestRequestFromAnActiveContactIsAProposal(t *testing.T) {
	_, alice, bob, _ := friendsAndCarrier(t)
	inv, err := alice.Invite()
	if err != nil {
		t.Fatal(err)
	}
	// Bob's identity sends a fresh request to a new invite of Alice's.
	err = bob.update(func(tx *store.Tx) error {
		c, err := resolve(tx, "Alice")
		if err != nil {
			return err
		}
		return bob.initiate(tx, c, inv, inv.Link())
	})
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, bob, "Alice", "sent on the proposed session")
	rep := carry(t, bob, alice)
	if rep.Requests != 0 || rep.Messages != 0 {
		t.Fatalf("a request from an active contact was taken as new: %+v", rep)
	}
	cs, _ := alice.Contacts()
	if len(cs) != 1 || !cs[0].Rekey || cs[0].State != StateActive {
		t.Fatalf("Alice's contacts: %+v", cs)
	}
	if hasMessage(t, alice, "sent on the proposed session") {
		t.Fatal("a message on an unaccepted proposal shows")
	}
	// Alice still writes on the old session, which Bob still reads.
	mustSend(t, alice, "Bob", "on the old session")
	carry(t, alice, bob)
	if !hasMessage(t, bob, "on the old session") {
		t.Fatal("the proposal silently replaced the session Alice writes on")
	}
	if _, err := alice.Accept("Bob"); err != nil {
		t.Fatal(err)
	}
	if !hasMessage(t, alice, "sent on the proposed session") {
		t.Fatal("accepting the proposal did not show what came with it")
	}
	mustSend(t, alice, "Bob", "on the new session")
	carry(t, alice, bob)
	if !hasMessage(t, bob, "on the new session") {
		t.Fatal("after the accept, Bob cannot read Alice")
	}
}

// TestRequestWithoutProofOfItsSigningKey (claim S6): a request whose sealed
// identity claims someone's Ed25519 key without its signature over the
// X25519 key is refused.
func TestRequestWithoutProofOfItsSigningKey(t *testing.T) {
	clk := newTestClock()
	alice, mallory := newTestNode(t, "Alice", clk), newTestNode(t, "Mallory", clk)
	victim, _ := keys.NewIdentity("Victim", rand.Reader)
	inv, _ := alice.Invite()
	fc, err := keys.Initiate(mallory.id, inv, keys.PeriodOf(clk.Now()), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Mallory's key agreement key, the victim's signing key, and a
	// signature that does not verify.
	mdh := mallory.id.Public().DH
	binding := append(bytes.Clone(victim.Public().Sign), mdh[:]...)
	binding = append(binding, ed25519.Sign(mallory.id.Sign, []byte("grapevine v2 identity binding"))...)
	content := &Content{Type: TypeRequest, Time: uint32(clk.Now().Unix()), Period: keys.PeriodOf(clk.Now()),
		Ratchet: fc.Ratchet, KEM: fc.KEMKey, Name: "Victim"}
	tag := keys.IntroTag(inv.Secret, 7)
	e, err := envelope.SealIntro(envelope.Sealing{Tag: tag, Expiry: uint32(clk.Now().Add(time.Hour).Unix()), Hops: 3},
		keys.MaskEK(fc.EK, inv.Secret, tag), fc.IdentityKey, binding, keys.IntroSealKey(fc.SK), content.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := alice.Ingest([][]byte{e.Marshal()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 0 || rep.Invalid != 1 {
		t.Fatalf("a request without proof of its signing key: %+v", rep)
	}
	if cs, _ := alice.Contacts(); len(cs) != 0 {
		t.Fatalf("Alice has contacts %+v", cs)
	}
}

// TestImpostorNames (claim S7): a requester who chooses a contact's name
// is shown with a mark and its fingerprint, names with invisible or
// reordering characters are refused, and a reference that matches two
// contacts is refused rather than guessed.
func TestImpostorNames(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	befriend(t, alice, bob)
	for _, bad := range []string{"Bob\u200b", "B\u202eob", " ", "Bob\u0007", "Bo\u3000b", "\u115f", "Bob\ufe0f"} {
		if _, err := alice.Rename("Bob", bad); err == nil {
			t.Errorf("renamed to %q", bad)
		}
	}
	// Two impostors named Bob send requests in one batch.
	var batch [][]byte
	for range 2 {
		m := newTestNode(t, "Bob", clk)
		mustAdd(t, m, alice.link())
		m.eachEnvelope(func(_ byte, raw []byte, _ *envelope.Envelope) error {
			batch = append(batch, bytes.Clone(raw))
			return nil
		})
	}
	if _, err := alice.Ingest(batch); err != nil {
		t.Fatal(err)
	}
	cs, _ := alice.Contacts()
	names := map[string]bool{}
	for _, c := range cs {
		if names[c.Name] {
			t.Fatalf("two contacts share the name %q: %+v", c.Name, cs)
		}
		names[c.Name] = true
		if c.State == StateRequest && (c.Name == "Bob" || !strings.Contains(c.Name, c.Fingerprint[:4])) {
			t.Fatalf("an impostor shows as %q", c.Name)
		}
	}
	if len(cs) != 3 {
		t.Fatalf("contacts: %+v", cs)
	}
	// "Bob" names the active Bob, not an impostor: accepting by that name
	// finds no request.
	if c, err := alice.Accept("Bob"); err == nil {
		t.Fatalf("accepted %+v by the name of an active contact", c)
	}
	// A reference that is one contact's name and another's fingerprint
	// prefix is refused, whichever would have won.
	var impostor string
	for _, c := range cs {
		if c.State == StateRequest {
			impostor = c.Fingerprint
		}
	}
	if _, err := alice.Rename("Bob", impostor[:6]); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(impostor[:6], "for Bob"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("an ambiguous reference: %v", err)
	}
}

// TestLostRequestCanBeSentAgain (claim S8): Alice's request never reaches
// Bob within the retention window. Her message then says expired, she adds
// a fresh invite of Bob's, and the conversation starts.
func TestLostRequestCanBeSentAgain(t *testing.T) {
	clk := newTestClock()
	alice, bob := newTestNode(t, "Alice", clk), newTestNode(t, "Bob", clk)
	mustAdd(t, alice, bob.link())
	m := mustSend(t, alice, "Bob", "lost in the mesh")
	clk.Advance(DefaultConfig.Retention + 2*keys.PeriodLength)
	alice.reopen()
	bob.reopen()
	for _, msg := range messages(t, alice) {
		if msg.ID == m.ID && msg.Status != StatusExpired {
			t.Fatalf("a message whose every copy expired is %q", msg.Status)
		}
	}
	if s := contactState(t, alice, "Bob"); s != StatePending {
		t.Fatalf("Bob is %s", s)
	}
	if _, err := alice.Rekey("Bob"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("sending again through an expired invite: %v", err)
	}
	mustAdd(t, alice, bob.link()) // a fresh invite: the request goes again
	mustSend(t, alice, "Bob", "second attempt")
	carry(t, alice, bob)
	if _, err := bob.Accept("Alice"); err != nil {
		t.Fatal(err)
	}
	if !hasMessage(t, bob, "second attempt") || hasMessage(t, bob, "lost in the mesh") {
		t.Fatalf("Bob has %+v", messages(t, bob))
	}
	carry(t, bob, alice)
	if s := contactState(t, alice, "Bob"); s != StateActive {
		t.Fatalf("Bob is %s after answering", s)
	}
	for _, msg := range messages(t, alice) {
		if msg.Text == "second attempt" && msg.Status != StatusDelivered {
			t.Fatalf("the second attempt is %s", msg.Status)
		}
	}
}
