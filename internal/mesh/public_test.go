package mesh

import (
	"context"
	"crypto/rand"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/link"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/session"
)

const publicBits = 10 // cheap stamps for tests

func publicTestNode(t *testing.T, name string) *node.Node {
	t.Helper()
	n := newTestNode(t, name)
	if err := n.SetPublicPolicy(node.PublicPolicy{StampBits: publicBits}); err != nil {
		t.Fatal(err)
	}
	return n
}

func texts(t *testing.T, n *node.Node, room string) []string {
	t.Helper()
	ps, err := n.ChannelMessages(room)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Text)
	}
	return out
}

// TestPublicRoomsOverLinks runs A–B–C–D over live links: a channel post by
// A reaches C through B, who is in no channel; a Nearby post with hop limit
// 2 reaches B and C and not D.
func TestPublicRoomsOverLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, c, d := publicTestNode(t, "A"), publicTestNode(t, "B"), publicTestNode(t, "C"), publicTestNode(t, "D")
		for _, n := range []*node.Node{a, c} {
			if _, err := n.JoinChannel("#rescue", "", publicBits); err != nil {
				t.Fatal(err)
			}
		}
		tm := newTestMesh(t)
		defer tm.stop()
		tm.start(a, "a")
		tm.start(b, "b", "a")
		tm.start(c, "c", "b")
		tm.start(d, "d", "c")
		if _, err := a.PostChannel(context.Background(), "#rescue", "bridge is out"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "C reads the channel post", 5*time.Second, func() bool { return len(texts(t, c, "#rescue")) == 1 })
		if _, err := a.PostNearby(context.Background(), "anyone near the school?", 2, 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B and C read the Nearby post", 5*time.Second, func() bool {
			return len(texts(t, b, "nearby")) == 1 && len(texts(t, c, "nearby")) == 1
		})
		time.Sleep(time.Minute) // virtual: every link has synced many times over
		if got := texts(t, d, "nearby"); len(got) != 0 {
			t.Fatalf("D, 3 hops away, reads %q", got)
		}
	})
}

// TestUnstampedFloodIsCut: a link that pushes public posts without
// stamps has every one dropped before it is stored, and once they pass the
// junk limit it is cut and penalised; an honest post from another link is
// stored meanwhile.
func TestUnstampedFloodIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bob, alice := publicTestNode(t, "Bob"), publicTestNode(t, "Alice")
		tm := newTestMesh(t)
		defer tm.stop()
		mb, _ := tm.start(bob, "b")
		tm.start(alice, "a", "b")
		c, err := tm.net.Transport("spam").Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := link.NewStatic(nil)
		lc, err := link.Client(t.Context(), c, link.Config{Static: key})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := keys.NewIdentity("Spammer", rand.Reader)
		go func() {
			for range 3 * junkLimit {
				e, _ := room.Nearby().Seal(id, keys.PeriodOf(time.Now()), []byte{1, 'x'}, uint32(time.Now().Add(time.Hour).Unix()), 2, rand.Reader)
				raw := e.Marshal()
				for room.CheckStamp(raw, publicBits) == nil {
					raw[6]++
				}
				if lc.WriteFrame(byte(session.TypeEnvelope), raw) != nil {
					return
				}
			}
		}()
		post, err := alice.PostNearby(context.Background(), "honest", 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the spam link is cut", time.Minute, func() bool { return mb.penalised("spam") })
		c.Close()
		eventually(t, "Bob reads the honest post", 5*time.Second, func() bool { return len(texts(t, bob, "nearby")) == 1 })
		es, err := bob.Envelopes()
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].ID != post.ID {
			t.Fatalf("Bob holds %+v, want only Alice's post", es)
		}
		if got := texts(t, bob, "nearby"); len(got) != 1 || got[0] != "honest" {
			t.Fatalf("Bob reads %q", got)
		}
	})
}
