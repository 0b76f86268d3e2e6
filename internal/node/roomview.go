package node

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/room"
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
		r, _, err := n.resolveRoom(tx, ref, false)
		if err != nil {
			return err
		}
		info, err = n.roomInfo(tx, r)
		return err
	})
	return info, err
}

// RoomConversation is a room with the gist of what was posted in it: the
// conversation list's entry for a room.
type RoomConversation struct {
	RoomInfo
	Posts int          `json:"posts"`          // posts kept
	Last  *RoomMessage `json:"last,omitempty"` // the newest, if any
}

// RoomConversations lists the rooms I am in with their number of posts and
// newest post, newest activity first (rooms without posts last, by name).
func (n *Node) RoomConversations() ([]RoomConversation, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []RoomConversation
	err := n.st.View(func(tx *store.Tx) error {
		rs, err := n.allRooms(tx, false)
		if err != nil {
			return err
		}
		byID := make(map[string]int, len(rs))
		heads := make([]string, len(rs))
		for i, r := range rs {
			info, err := n.roomInfo(tx, r)
			if err != nil {
				return err
			}
			byID[info.ID] = i
			h := r.Head().Hash
			heads[i] = hex.EncodeToString(h[:])
			out = append(out, RoomConversation{RoomInfo: info})
		}
		last := make([]*roomMessageRecord, len(rs))
		err = tx.ForEach(colRoomMessages, func(v []byte, _ time.Time) error {
			var rec roomMessageRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			i, ok := byID[rec.Room]
			if !ok {
				return nil // a room I left
			}
			out[i].Posts++
			if l := last[i]; l == nil || rec.Time.After(l.Time) || rec.Time.Equal(l.Time) && rec.Seq > l.Seq {
				last[i] = &rec
			}
			return nil
		})
		if err != nil {
			return err
		}
		names, err := contactNames(tx)
		if err != nil {
			return err
		}
		for i, rec := range last {
			if rec == nil {
				continue
			}
			sender := names[rec.Sender]
			switch {
			case rec.Direction == "out":
				sender = "me"
			case sender == "":
				sender = rec.Sender[:8]
			}
			out[i].Last = &RoomMessage{ID: rec.ID, Room: rec.Room, Sender: sender, Direction: rec.Direction, Text: rec.Text,
				Time: rec.Time, Earlier: rec.Epoch != heads[i]}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Last, out[j].Last
		switch {
		case a != nil && b != nil && !a.Time.Equal(b.Time):
			return a.Time.After(b.Time)
		case (a == nil) != (b == nil):
			return a != nil
		}
		return keys.NameKey(out[i].Name) < keys.NameKey(out[j].Name)
	})
	return out, err
}

// roomMemberRef finds whom a change to r is about: a contact (by name or
// fingerprint prefix), or else a member who is not my contact, by the start
// of its fingerprint (at least 4 characters; Room lists such a member under
// the first 8). It returns the identity and the name to show.
func (n *Node) roomMemberRef(tx *store.Tx, r *room.Room, ref string) ([32]byte, string, error) {
	c, err := resolve(tx, ref)
	if err == nil {
		return [32]byte(c.Sign), c.Name, nil
	}
	if !errors.Is(err, ErrNoContact) {
		return [32]byte{}, "", err
	}
	fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(ref), " ", ""))
	if len(fp) < 4 {
		return [32]byte{}, "", err
	}
	var found []room.MemberState
	for _, m := range r.Head().Members() {
		if m.Ed != n.selfEd() && strings.HasPrefix(fingerprintOf(m), fp) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return [32]byte{}, "", err
	case 1:
		return found[0].Ed, fingerprintOf(found[0])[:8], nil
	}
	return [32]byte{}, "", invalid(ReasonAmbiguous, "%q matches %d members of %q; give more of the fingerprint", ref, len(found), r.Head().Name)
}
