package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/room"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// roomCache keeps rooms decoded between transactions. Decoding a room's
// record applies its whole history again — every membership change's
// signatures checked, every epoch's watch window derived — which for a
// 250-member group costs about 100 ms, and the node used to pay it for
// every message sealed or opened in the group (BenchmarkLoad250 in
// internal/room, BenchmarkMessageAtTheNode here).
//
// An entry is used only while the store holds exactly the bytes it was
// decoded from or saved as (their SHA-256), so a transaction that rolls
// back, or a record written by any other path, can never be answered from
// memory. A caller that will change a room takes it (the entry goes) and
// puts it back by saving it; a caller that only reads it peeks and must
// not change it.
type roomCache struct {
	bySum map[[32]byte]*room.Room
	sumOf map[string][32]byte // room ID (hex) → the sum of its entry
}

func newRoomCache() *roomCache {
	return &roomCache{bySum: map[[32]byte]*room.Room{}, sumOf: map[string][32]byte{}}
}

// decode returns the room stored as the bytes v, from the cache when it
// holds them.
func (c *roomCache) decode(v []byte, take bool) (*room.Room, error) {
	sum := sha256.Sum256(v)
	r, ok := c.bySum[sum]
	if !ok {
		var err error
		if r, err = room.Unmarshal(v); err != nil {
			return nil, fmt.Errorf("failed to load a room: %w", err)
		}
	}
	id := hex.EncodeToString(r.Group[:])
	c.drop(id)
	if !take {
		c.keep(id, sum, r)
	}
	return r, nil
}

func (c *roomCache) keep(id string, sum [32]byte, r *room.Room) {
	c.drop(id)
	c.bySum[sum], c.sumOf[id] = r, sum
}

func (c *roomCache) drop(id string) {
	if sum, ok := c.sumOf[id]; ok {
		delete(c.bySum, sum)
		delete(c.sumOf, id)
	}
}

// loadRoom returns the room id, or nil if I am not in it; take says the
// caller will change it (and save it).
func (n *Node) loadRoom(tx *store.Tx, id string, take bool) (*room.Room, error) {
	b, _, ok, err := tx.Get(colRooms, []byte(id))
	if err != nil || !ok {
		return nil, err
	}
	return n.roomc.decode(b, take)
}

// saveRoom stores a room and keeps it decoded under the bytes stored.
func (n *Node) saveRoom(tx *store.Tx, r *room.Room) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	id := hex.EncodeToString(r.Group[:])
	if err := tx.Put(colRooms, []byte(id), b, store.Forever); err != nil {
		return err
	}
	n.roomc.keep(id, sha256.Sum256(b), r)
	return nil
}

// eachRoom calls fn with every room I am in, to read: fn must not change it.
func (n *Node) eachRoom(tx *store.Tx, fn func(id string, r *room.Room)) error {
	return tx.ForEach(colRooms, func(v []byte, _ time.Time) error {
		r, err := n.roomc.decode(v, false)
		if err != nil {
			return err
		}
		fn(hex.EncodeToString(r.Group[:]), r)
		return nil
	})
}

// allRooms loads every room I am in; take says the caller will change them
// (and save them).
func (n *Node) allRooms(tx *store.Tx, take bool) ([]*room.Room, error) {
	var rs []*room.Room
	err := n.eachRoom(tx, func(id string, r *room.Room) {
		if take {
			n.roomc.drop(id)
		}
		rs = append(rs, r)
	})
	return rs, err
}
