package node

import (
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Room returns one room I am in, found by its name or the start of its ID
// (at least 4 characters), as Rooms lists it: name, epoch, members and
// admins.
func (n *Node) Room(ref string) (RoomInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var info RoomInfo
	err := n.st.View(func(tx *store.Tx) error {
		r, _, err := resolveRoom(tx, ref)
		if err != nil {
			return err
		}
		info, err = n.roomInfo(tx, r)
		return err
	})
	return info, err
}
