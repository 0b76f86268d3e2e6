package mesh

import (
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// PeerInfo is what the node knows about one neighbour. It carries no
// identity — link keys rotate and are not the user's — except the name of a
// contact who recognised us.
type PeerInfo struct {
	Addr              string    `json:"addr"`      // remote address, host:port
	Transport         string    `json:"transport"` // "tcp", "mem"
	Direction         string    `json:"direction"` // "in" (they dialled) or "out"
	Static            bool      `json:"static"`    // configured with --peer
	Since             time.Time `json:"since"`     // link established
	BytesSent         uint64    `json:"bytes_sent"`
	BytesReceived     uint64    `json:"bytes_received"`
	EnvelopesSent     int       `json:"envelopes_sent"`
	EnvelopesReceived int       `json:"envelopes_received"`
	Synced            bool      `json:"synced"`      // the first reconciliation finished
	OffersSent        int       `json:"offers_sent"` // last spray-and-wait copies offered, of messages and receipts (SPEC §12.7)
	// Contact names the neighbour if it is a contact and recognised us
	// privately on this link (SPEC §12.6); empty for everyone else.
	Contact string `json:"contact,omitempty"`
}

// Status is the node's state for `grapevine status`.
type Status struct {
	node.Stats
	Peers     int       `json:"peers"`
	Listen    []string  `json:"listen"`
	Discovery bool      `json:"discovery"` // sending beacons (false with --stealth)
	Relay     bool      `json:"relay"`
	Started   time.Time `json:"started"`
}
