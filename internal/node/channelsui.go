package node

import (
	"encoding/hex"
	"encoding/json"
	"sort"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Announcements lists the announcement channels I own (Mine) and those I
// follow, by local name: what the web UI and the terminal chat show, and
// what ChannelMessages reads as "announce:" and the name.
func (n *Node) Announcements() ([]AnnouncementChannel, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []AnnouncementChannel
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		for name := range pr.owned {
			o := pubOf(n.ownerKey(name))
			out = append(out, AnnouncementChannel{Name: name, Owner: hex.EncodeToString(o[:]), Mine: true})
		}
		for o, name := range pr.follows {
			out = append(out, AnnouncementChannel{Name: name, Owner: hex.EncodeToString(o[:])})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Owner < out[j].Owner
	})
	return out, err
}

// RoomLatest is the gist of a public room: how many posts it has here and
// the newest (muted and blocked posters' left out).
type RoomLatest struct {
	Room  string     `json:"room"` // as ChannelMessages takes it
	Posts int        `json:"posts"`
	Last  PublicPost `json:"last"`
}

// LatestPosts is RoomLatest of every room that has posts, in one pass over
// the posts (the chats list shows every room's newest post).
func (n *Node) LatestPosts() ([]RoomLatest, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	type best struct {
		n   int
		rec postRecord
	}
	by := map[string]*best{}
	err := n.st.View(func(tx *store.Tx) error {
		pr, err := n.public(tx)
		if err != nil {
			return err
		}
		return tx.ForEach(colPublicPosts, func(v []byte, _ time.Time) error {
			var r postRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if k, err := parseKey(r.Key); err == nil && pr.blocks[k] != "" {
				return nil
			}
			b := by[r.Room]
			if b == nil {
				b = &best{}
				by[r.Room] = b
			}
			if b.n == 0 || r.Time.After(b.rec.Time) || (r.Time.Equal(b.rec.Time) && r.Seq > b.rec.Seq) {
				b.rec = r
			}
			b.n++
			return nil
		})
	})
	out := make([]RoomLatest, 0, len(by))
	for room, b := range by {
		out = append(out, RoomLatest{Room: room, Posts: b.n, Last: b.rec.PublicPost})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Room < out[j].Room })
	return out, err
}
