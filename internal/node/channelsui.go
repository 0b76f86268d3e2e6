package node

import (
	"encoding/hex"
	"sort"

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
