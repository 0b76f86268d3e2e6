package sim

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Its JSON form is the simulator's output;
// it holds nothing that depends on the machine, so it replays exactly.
type Result struct {
	// The scenario, so that a line of output stands on its own.
	Nodes     int     `json:"nodes"`
	Area      string  `json:"area_m"`
	Range     float64 `json:"range_m"`
	Mobility  string  `json:"mobility"`
	Routing   string  `json:"routing"`
	Hops      int     `json:"hops"`
	Duration  float64 `json:"duration_s"`
	Messages  int     `json:"messages"`
	TTL       float64 `json:"ttl_s"`
	Seed      uint64  `json:"seed"`
	Density   float64 `json:"density_per_km2"`
	Contacts  int     `json:"contact_pairs"`
	Bandwidth float64 `json:"bandwidth_bytes_per_s"`

	// The contact graph when the run starts.
	MeanDegree     float64 `json:"mean_degree"`
	GiantComponent float64 `json:"giant_component"` // share of nodes in the largest connected component
	PairsConnected float64 `json:"pairs_connected"` // share of messages whose two ends were in one component
	// PairsWithinHops is the share whose ends were at most the hop limit
	// apart: in a standing crowd, the most that can be delivered (a writer
	// draws up to 3 hops off the limit, SPEC §12.7, so pairs within the
	// limit less 3 are sure to be reached, the others may be).
	PairsWithinHops float64 `json:"pairs_within_hops"`

	// What happened.
	Delivered                 int     `json:"delivered"`      // opened by their recipient within their TTL
	DeliveredLate             int     `json:"delivered_late"` // opened after their TTL (expiry is rounded up to the minute)
	DeliveryRatio             float64 `json:"delivery_ratio"`
	LatencyP50                float64 `json:"latency_p50_s"`
	LatencyP90                float64 `json:"latency_p90_s"`
	Transmissions             int64   `json:"transmissions"`         // envelopes and receipts put on a link
	ReceiptTransmissions      int64   `json:"receipt_transmissions"` // of which receipts
	TransmissionsPerDelivered float64 `json:"transmissions_per_delivered"`
	// Duplicates counts envelopes (messages and receipts) that reached a
	// node already holding them: transmissions that carried nothing new.
	Duplicates int64 `json:"duplicates"`
	// AlreadyDelivered counts messages that reached a node holding the
	// receipt that proves them delivered.
	AlreadyDelivered int64 `json:"already_delivered"`
	// CopiesReturned counts spray-and-wait copies handed over on links that
	// broke before the receiver acknowledged them, given back to the node
	// that handed them (SPEC §12.7); 0 under epidemic routing.
	CopiesReturned int64 `json:"copies_returned"`
	// OverheadRatio is the DTN literature's (relayed − delivered) /
	// delivered, counting message copies only (no receipts), where every
	// copy put on a link is relayed, the last hop included.
	OverheadRatio     float64 `json:"overhead_ratio"`
	LinkBytes         int64   `json:"link_bytes"` // every frame, reconciliation and handshakes included
	BytesPerDelivered float64 `json:"bytes_per_delivered"`
	PeakStoreBytes    int64   `json:"peak_store_bytes"` // the most any one node held (envelopes, own and carried)
	Links             int     `json:"links"`            // links that came up
	// DeliveredByHops[h] counts the messages delivered over h links (the
	// path of the first copy their recipient received).
	DeliveredByHops []int `json:"delivered_by_hops"`

	// Room traffic (rooms.go), present only in runs that have it.
	Groups  *RoomTraffic `json:"groups,omitempty"`
	Channel *RoomTraffic `json:"channel,omitempty"`
	Spam    *SpamResult  `json:"spam,omitempty"`

	// Timeline is the share of all messages delivered within a time of
	// being sent, from 0 to their TTL, for plots.
	Timeline []TimePoint `json:"-"`
	// TimelineByHops is the same for those delivered over 1, 2, 3 and 4
	// or more links: the four add up to Timeline.
	TimelineByHops [4][]TimePoint `json:"-"`

	latencies    []time.Duration
	hops         []uint8 // of each delivered message, as latencies
	contactPairs [][2]int32
}

// RoomTraffic is what the group messages, or the channel's posts, did. A
// message is delivered to a reader (a group member, a channel reader) when
// that reader opens it; its sender is not a reader of it.
type RoomTraffic struct {
	Rooms     int `json:"rooms,omitempty"`      // groups
	Members   int `json:"members"`              // of each group; of the channel, its readers
	StampBits int `json:"stamp_bits,omitempty"` // the channel's difficulty (and the relays' floor)
	Messages  int `json:"messages"`             // sent
	// Recipients is how many deliveries the messages sought: each to each
	// reader but its sender.
	Recipients    int     `json:"recipients"`
	Delivered     int     `json:"delivered"`      // within the TTL
	DeliveredLate int     `json:"delivered_late"` // after it
	DeliveryRatio float64 `json:"delivery_ratio"` // Delivered / Recipients
	// Complete counts the messages every reader opened within the TTL.
	Complete   int     `json:"complete"`
	LatencyP50 float64 `json:"latency_p50_s"`
	LatencyP90 float64 `json:"latency_p90_s"`
	// Transmissions counts copies put on a link; LinkBytes their frames'
	// bytes, sent again after a loss included.
	Transmissions           int64   `json:"transmissions"`
	TransmissionsPerMessage float64 `json:"transmissions_per_message"`
	LinkBytes               int64   `json:"link_bytes"`
	// RateLimited counts stamped envelopes that nodes dropped for a link's
	// or a pseudonym's rate (channel only).
	RateLimited int `json:"rate_limited,omitempty"`

	latencies []time.Duration
}

func (t *RoomTraffic) delivered(latency, ttl time.Duration) {
	if latency > ttl {
		t.DeliveredLate++
		return
	}
	t.Delivered++
	t.latencies = append(t.latencies, latency)
}

func (t *RoomTraffic) finish() {
	if t == nil {
		return
	}
	if t.Recipients > 0 {
		t.DeliveryRatio = round(float64(t.Delivered)/float64(t.Recipients), 4)
	}
	if t.Messages > 0 {
		t.TransmissionsPerMessage = round(float64(t.Transmissions)/float64(t.Messages), 2)
	}
	lat := slices.Clone(t.latencies)
	slices.Sort(lat)
	t.LatencyP50 = round(percentile(lat, 0.5).Seconds(), 3)
	t.LatencyP90 = round(percentile(lat, 0.9).Seconds(), 3)
}

// SpamResult is what spam without stamps cost and where it ended.
type SpamResult struct {
	Spammers int     `json:"spammers"`
	Rate     float64 `json:"rate_per_min"` // posts a simulated minute, each spammer
	Posts    int     `json:"posts"`        // made
	Frames   int64   `json:"frames"`       // put on links (by the spammers, each post to every neighbour at the time, and by any node that carried one on)
	// LinkBytes is the frames' bytes, sent again after a loss included.
	LinkBytes int64 `json:"link_bytes"`
	// Dropped counts spam arrivals that nodes dropped at ingest for the
	// stamp; Stored counts spam posts stored by a node that is not a
	// spammer (a node and a post each): it should be 0.
	Dropped int64 `json:"dropped"`
	Stored  int64 `json:"stored"`
}

// TimePoint is the share of messages delivered within Seconds of sending.
type TimePoint struct {
	Seconds   float64
	Delivered float64
}

func (r *Result) init(sc Scenario) {
	r.Nodes = sc.Nodes
	r.Area = strconv.FormatFloat(sc.Width, 'f', -1, 64) + "x" + strconv.FormatFloat(sc.Height, 'f', -1, 64)
	r.Range = sc.Range
	r.Mobility = sc.Mobility.String()
	r.Routing = sc.Routing()
	r.Hops = int(sc.Hops)
	r.Duration = sc.Duration.Seconds()
	r.Messages = sc.Messages
	r.TTL = sc.TTL.Seconds()
	r.Seed = sc.Seed
	r.Density = round(float64(sc.Nodes)/(sc.Width*sc.Height/1e6), 2)
	r.Contacts = len(r.contactPairs)
	r.Bandwidth = sc.Bandwidth
}

func (r *Result) delivered(latency, ttl time.Duration, hops uint8) {
	if latency > ttl {
		r.DeliveredLate++
		return
	}
	r.Delivered++
	r.latencies = append(r.latencies, latency)
	r.hops = append(r.hops, hops)
	for len(r.DeliveredByHops) <= int(hops) {
		r.DeliveredByHops = append(r.DeliveredByHops, 0)
	}
	r.DeliveredByHops[hops]++
}

func (r *Result) finish(sc Scenario) {
	r.MeanDegree = round(r.MeanDegree, 4)
	r.GiantComponent = round(r.GiantComponent, 4)
	r.PairsConnected = round(r.PairsConnected, 4)
	r.PairsWithinHops = round(r.PairsWithinHops, 4)
	if sc.Messages > 0 {
		r.DeliveryRatio = round(float64(r.Delivered)/float64(sc.Messages), 4)
	}
	if r.Delivered > 0 {
		r.TransmissionsPerDelivered = round(float64(r.Transmissions)/float64(r.Delivered), 2)
		copies := r.Transmissions - r.ReceiptTransmissions
		r.OverheadRatio = round(float64(copies-int64(r.Delivered))/float64(r.Delivered), 2)
		r.BytesPerDelivered = round(float64(r.LinkBytes)/float64(r.Delivered), 0)
	}
	r.Groups.finish()
	r.Channel.finish()
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	r.LatencyP50 = round(percentile(lat, 0.5).Seconds(), 3)
	r.LatencyP90 = round(percentile(lat, 0.9).Seconds(), 3)
	r.Timeline = timeline(lat, sc.TTL, sc.Messages)
	for g := range r.TimelineByHops {
		var in []time.Duration
		for i, h := range r.hops {
			if min(max(int(h), 1), 4)-1 == g {
				in = append(in, r.latencies[i])
			}
		}
		slices.Sort(in)
		r.TimelineByHops[g] = timeline(in, sc.TTL, sc.Messages)
	}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// timeline samples, at 200 points from 0 to d, the share of messages
// delivered within that time of being sent (latencies sorted).
func timeline(at []time.Duration, d time.Duration, messages int) []TimePoint {
	if messages == 0 {
		return nil
	}
	const points = 200
	out := make([]TimePoint, 0, points+1)
	j := 0
	for i := range points + 1 {
		t := d * time.Duration(i) / points
		for j < len(at) && at[j] <= t {
			j++
		}
		out = append(out, TimePoint{Seconds: t.Seconds(), Delivered: float64(j) / float64(messages)})
	}
	return out
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// WriteTable prints results for a person, one column per result.
func WriteTable(w io.Writer, rs []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, f func(r *Result) string) {
		fmt.Fprint(tw, name)
		for _, r := range rs {
			fmt.Fprint(tw, "\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	row("nodes", func(r *Result) string { return strconv.Itoa(r.Nodes) })
	row("area", func(r *Result) string { return r.Area + " m" })
	row("density", func(r *Result) string { return fmt.Sprintf("%g per km²", r.Density) })
	row("range", func(r *Result) string { return fmt.Sprintf("%g m", r.Range) })
	row("mobility", func(r *Result) string { return r.Mobility })
	row("routing", func(r *Result) string { return fmt.Sprintf("%s, %d hops", r.Routing, r.Hops) })
	row("duration", func(r *Result) string { return secs(r.Duration) })
	row("mean degree", func(r *Result) string { return fmt.Sprintf("%.2f", r.MeanDegree) })
	row("giant component", func(r *Result) string { return pct(r.GiantComponent) })
	row("pairs connected", func(r *Result) string { return pct(r.PairsConnected) })
	row("pairs within the hop limit", func(r *Result) string { return pct(r.PairsWithinHops) })
	row("delivered", func(r *Result) string {
		return fmt.Sprintf("%d of %d (%s)", r.Delivered, r.Messages, pct(r.DeliveryRatio))
	})
	row("latency p50 / p90", func(r *Result) string { return secs(r.LatencyP50) + " / " + secs(r.LatencyP90) })
	row("overhead ratio", func(r *Result) string { return fmt.Sprintf("%.2f", r.OverheadRatio) })
	row("transmissions per delivered", func(r *Result) string {
		return fmt.Sprintf("%.1f (%.0f %% receipts)", r.TransmissionsPerDelivered, 100*float64(r.ReceiptTransmissions)/max(1, float64(r.Transmissions)))
	})
	row("bytes per delivered", func(r *Result) string { return bytesText(r.BytesPerDelivered) })
	row("peak store (one node)", func(r *Result) string { return bytesText(float64(r.PeakStoreBytes)) })
	row("links made", func(r *Result) string { return strconv.Itoa(r.Links) })
	writeRoomRows(rs, row)
	return tw.Flush()
}

func pct(x float64) string { return fmt.Sprintf("%.1f %%", 100*x) }

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// writeRoomRows adds rows for room traffic, if any result has it ("-"
// for those without).
func writeRoomRows(rs []*Result, row func(string, func(*Result) string)) {
	traffic := func(name, what string, get func(*Result) *RoomTraffic) {
		if !slices.ContainsFunc(rs, func(r *Result) bool { return get(r) != nil }) {
			return
		}
		show := func(f func(t *RoomTraffic) string) func(*Result) string {
			return func(r *Result) string {
				if t := get(r); t != nil {
					return f(t)
				}
				return "-"
			}
		}
		row(what, show(func(t *RoomTraffic) string {
			if t.Rooms > 0 {
				return fmt.Sprintf("%d to %d groups of %d", t.Messages, t.Rooms, t.Members)
			}
			return fmt.Sprintf("%d, %d readers, %d-bit stamps", t.Messages, t.Members, t.StampBits)
		}))
		row(name+" delivered", show(func(t *RoomTraffic) string {
			return fmt.Sprintf("%d of %d (%s), %d to all", t.Delivered, t.Recipients, pct(t.DeliveryRatio), t.Complete)
		}))
		row(name+" latency p50 / p90", show(func(t *RoomTraffic) string { return secs(t.LatencyP50) + " / " + secs(t.LatencyP90) }))
		row(name+" transmissions each", show(func(t *RoomTraffic) string {
			s := fmt.Sprintf("%.1f (%s in all)", t.TransmissionsPerMessage, bytesText(float64(t.LinkBytes)))
			if t.RateLimited > 0 {
				s += fmt.Sprintf(", %d rate-limited", t.RateLimited)
			}
			return s
		}))
	}
	traffic("group", "group messages", func(r *Result) *RoomTraffic { return r.Groups })
	traffic("channel", "channel posts", func(r *Result) *RoomTraffic { return r.Channel })
	if !slices.ContainsFunc(rs, func(r *Result) bool { return r.Spam != nil }) {
		return
	}
	spam := func(f func(s *SpamResult) string) func(*Result) string {
		return func(r *Result) string {
			if r.Spam != nil {
				return f(r.Spam)
			}
			return "-"
		}
	}
	row("spam", spam(func(s *SpamResult) string {
		return fmt.Sprintf("%d posts by %d nodes (%g/min each)", s.Posts, s.Spammers, s.Rate)
	}))
	row("spam on links", spam(func(s *SpamResult) string {
		return fmt.Sprintf("%d frames, %s", s.Frames, bytesText(float64(s.LinkBytes)))
	}))
	row("spam dropped / stored", spam(func(s *SpamResult) string { return fmt.Sprintf("%d / %d", s.Dropped, s.Stored) }))
}
