package node

import (
	"fmt"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// JoinDerivedChannel joins a channel whose keys were derived elsewhere
// (room.JoinChannel, Keys): JoinChannel without its Argon2id, for the
// simulator, which joins one channel on hundreds of nodes. The node's floor
// applies as in JoinChannel; posts already carried are not read (call it
// before any are).
func (n *Node) JoinDerivedChannel(k room.ChannelKeys) error {
	c, err := room.ChannelFromKeys(k)
	if err != nil {
		return invalid(ReasonInvalidName, "%v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	err = n.publicUpdate(func(tx *store.Tx, pr *publicRooms) error {
		if c.Bits < pr.policy.StampBits {
			return invalid(ReasonInvalidSetting, "stamp difficulty %d is below the %d relays require", c.Bits, pr.policy.StampBits)
		}
		if err := putJSON(tx, colPublic, []byte("c"+c.Name), publicRecord{Channel: &k}, farFuture); err != nil {
			return err
		}
		pr.channels[c.Name] = c
		pr.idx.Update(c, keys.PeriodOf(n.now()))
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to join channel: %w", err)
	}
	return nil
}
