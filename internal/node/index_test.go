package node

import (
	"testing"

	"github.com/grapevine-mesh/grapevine/internal/keys"
)

// TestIndexDropsSpentInvites: an invite's tags are recognised while it is
// open, and once it is spent the index keeps nothing of them — no map the
// size of 256 tags (a Go map never shrinks).
func TestIndexDropsSpentInvites(t *testing.T) {
	ix := newIndex()
	var pub [32]byte
	var secret [keys.SecretSize]byte
	pub[0], secret[0] = 1, 2
	ix.addPrekey(pub, secret)
	tags := keys.IntroTags(secret)
	ref, ok := ix.lookup(tags[17])
	if !ok || ref.kind != slotIntro || ref.owner != ownerPrekey(pub) {
		t.Fatalf("an open invite's tag: %+v, %v", ref, ok)
	}
	if _, ok := ix.prekeys[ownerPrekey(pub)]; !ok {
		t.Fatal("the invite's keys are not kept")
	}
	ix.removeOwner(ownerPrekey(pub))
	if _, ok := ix.lookup(tags[17]); ok {
		t.Error("a spent invite's tag is still recognised")
	}
	if ix.intros != nil || len(ix.slots) != 0 || len(ix.owned) != 0 {
		t.Errorf("a spent invite left %d intro tags (map kept: %v), %d slots, %d owners", len(ix.intros), ix.intros != nil, len(ix.slots), len(ix.owned))
	}
}
