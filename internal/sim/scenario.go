// Package sim is Grapevine's mesh simulator: a discrete-event simulation
// that runs the real node (package node, on in-memory stores) and the real
// sync protocol (package session) between virtual radios that move in an
// area (package sim/mobility). Links exist while two nodes are within range
// and carry frames with a bandwidth, a latency and a loss rate; time is
// virtual, so a day passes in minutes, and one goroutine runs every event
// in (time, sequence) order, so a scenario and seed replay byte for byte.
//
// What is simulated rather than run: discovery (a link comes up a random
// part of a beacon interval after two nodes come within range), the Noise
// handshake (its bytes and round trips), and TCP (frames arrive in order;
// a lost frame is sent again after a timeout). Everything above the link —
// Hello, reconciliation, wants, live push, spray-and-wait, hop limits,
// receipts, quotas, expiry — is the daemon's own code.
package sim

import (
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/discovery"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/sim/mobility"
)

// Scenario is everything a run depends on; with the same Scenario (seed
// included) a run gives the same Result.
type Scenario struct {
	Nodes         int
	Width, Height float64 // metres
	Range         float64 // metres: a link exists while two nodes are this close
	Mobility      mobility.Model
	Trace         *mobility.Trace // Mobility = trace: the movement replayed
	SpeedMin      float64         // m/s, waypoint only
	SpeedMax      float64
	PauseMin      time.Duration // waypoint only
	PauseMax      time.Duration
	Tick          time.Duration // how often positions and links are updated
	// BeaconInterval is the nodes' mean beacon interval (SPEC §9.3): two
	// nodes in range link up within one, at a uniformly random moment.
	// Zero means the node's default, 5 s.
	BeaconInterval time.Duration

	Duration  time.Duration
	Messages  int           // sent between random contact pairs
	SendUntil time.Duration // messages go out at random times in [0, SendUntil); 0: Duration - TTL, or Duration/2 if TTL >= Duration
	Size      int           // message text bytes
	TTL       time.Duration // envelope lifetime (the node's retention)
	Contacts  float64       // contacts per node on average (pairs = Nodes × Contacts / 2)

	Copies     uint8 // routing: 0 epidemic, L spray-and-wait with L copies
	Hops       uint8 // hop limit of new envelopes
	RelayQuota int64 // bytes each node carries for others

	Bandwidth float64       // bytes per second, each way, per link
	Latency   time.Duration // one way
	Loss      float64       // probability that a frame is lost and sent again

	// Room traffic (rooms.go). Private groups: Groups groups of GroupSize
	// members each (0: none), set up before the run; GroupMessages posts
	// to them, each from a random member of a random group.
	GroupSize     int
	Groups        int
	GroupMessages int
	// A public channel: ChannelPosts posts (0: no channel), each by a
	// random one of ChannelReaders readers (0: every node), stamped at
	// ChannelBits, which is also every node's relay floor (StampBits).
	ChannelPosts   int
	ChannelReaders int
	ChannelBits    int
	// Spam: each of Spammers nodes pushes SpamRate posts a simulated
	// minute without a valid stamp to the neighbours it has (0: none).
	Spammers int
	SpamRate float64

	Seed uint64
}

// Default is a small scenario that runs in seconds: 200 walkers on a
// kilometre square with 50 m radios for two hours.
var Default = Scenario{
	Nodes: 200, Width: 1000, Height: 1000, Range: 50,
	Mobility: mobility.Waypoint, SpeedMin: 0.5, SpeedMax: 1.5, PauseMax: 5 * time.Minute,
	Tick:     time.Second,
	Duration: 2 * time.Hour, Messages: 500, Size: 140, TTL: time.Hour, Contacts: 4,
	Hops: node.DefaultConfig.Hops, RelayQuota: node.DefaultRelayQuota,
	Bandwidth: 250_000, Latency: 5 * time.Millisecond, Loss: 0.01,
	Groups: 1, GroupMessages: 100, ChannelBits: SimStampBits, Spammers: 1,
	Seed: 1,
}

// Validate names the first setting that cannot be simulated.
func (s Scenario) Validate() error {
	switch {
	case s.Nodes < 2:
		return fmt.Errorf("nodes: %d, need at least 2", s.Nodes)
	case s.Range <= 0:
		return fmt.Errorf("range: %g m, must be positive", s.Range)
	case s.Tick <= 0:
		return fmt.Errorf("tick: %s, must be positive", s.Tick)
	case s.Duration <= 0:
		return fmt.Errorf("duration: %s, must be positive", s.Duration)
	case s.Messages < 0:
		return fmt.Errorf("messages: %d, must not be negative", s.Messages)
	case s.Size < 1 || s.Size > node.MaxText:
		return fmt.Errorf("size: %d bytes, must be 1 to %d", s.Size, node.MaxText)
	case s.TTL < time.Minute:
		return fmt.Errorf("ttl: %s, must be at least a minute", s.TTL)
	case s.Contacts <= 0:
		return fmt.Errorf("contacts: %g per node, must be positive", s.Contacts)
	case s.Copies > node.MaxCopies:
		return fmt.Errorf("routing: spray:%d, at most %d copies", s.Copies, node.MaxCopies)
	case s.Hops == 0 || s.Hops > node.MaxHops:
		return fmt.Errorf("hops: must be 1 to %d", node.MaxHops)
	case s.Bandwidth <= 0:
		return fmt.Errorf("bandwidth: %g bytes/s, must be positive", s.Bandwidth)
	case s.Latency < 0:
		return fmt.Errorf("latency: %s, must not be negative", s.Latency)
	case s.Loss < 0 || s.Loss >= 1:
		return fmt.Errorf("loss: %g, must be in [0, 1)", s.Loss)
	case s.SendUntil < 0 || s.SendUntil > s.Duration:
		return fmt.Errorf("send-until: %s, must be within the duration %s", s.SendUntil, s.Duration)
	}
	if err := s.validateRooms(); err != nil {
		return err
	}
	if s.pairs() > s.Nodes*(s.Nodes-1)/2 {
		return fmt.Errorf("contacts: %g per node is more than %d nodes can have", s.Contacts, s.Nodes)
	}
	return s.world().Validate()
}

func (s Scenario) world() mobility.Config {
	return mobility.Config{Nodes: s.Nodes, Width: s.Width, Height: s.Height, Model: s.Mobility, Trace: s.Trace,
		SpeedMin: s.SpeedMin, SpeedMax: s.SpeedMax,
		PauseMin: s.PauseMin.Seconds(), PauseMax: s.PauseMax.Seconds(), Seed: s.Seed}
}

func (s Scenario) beaconInterval() time.Duration {
	if s.BeaconInterval <= 0 {
		return discovery.DefaultInterval
	}
	return s.BeaconInterval
}

// pairs is how many contact pairs the workload draws from.
func (s Scenario) pairs() int {
	return max(1, int(float64(s.Nodes)*s.Contacts/2+0.5))
}

// sendUntil is the end of the window in which messages go out: by default
// every message has its whole lifetime inside the run.
func (s Scenario) sendUntil() time.Duration {
	switch {
	case s.SendUntil > 0:
		return s.SendUntil
	case s.TTL < s.Duration:
		return s.Duration - s.TTL
	}
	return s.Duration / 2
}

// Routing names the routing policy as the CLI spells it.
func (s Scenario) Routing() string { return node.FormatRouting(s.Copies) }
