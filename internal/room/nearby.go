package room

import "time"

// Nearby (SPEC §15.13) is a channel everyone is in: its seed is a constant,
// so anyone — every relay included — can read every Nearby post. It is for
// talking to whoever is within a few hops right now, not for anything
// private. Posts are signed by a pseudonym that changes every period (a
// day), and stamped like channel posts. They travel few hops and live
// briefly: the writer sets both, and every node, since every node can
// recognise a Nearby post, holds it to NearbyMaxHops and NearbyMaxLifetime.
const (
	NearbyHops        = 2
	NearbyLifetime    = time.Hour
	NearbyMaxHops     = 3
	NearbyMaxLifetime = 6 * time.Hour
	nearbyName        = "nearby"
)

var nearbyChannel = channelFrom(nearbyName, DefaultStampBits, []byte("grapevine nearby v1: everyone can read this"), true)

// Nearby returns the Nearby room's keys (shared: do not modify).
func Nearby() *Channel { return nearbyChannel }
