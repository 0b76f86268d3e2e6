package api

// GET and PUT /v1/settings: the settings the owner changes while the node
// runs (stealth, relaying, the relay quota, the chunk quota, the file
// limit, retention). The node saves them
// and applies them at once (node.SaveSettings); stealth is the mesh's
// (mesh.SetStealth).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

type (
	// Settings is the response of GET and PUT /v1/settings.
	Settings struct {
		Stealth    bool  `json:"stealth"`     // no beacons sent
		Relay      bool  `json:"relay"`       // carrying for others
		RelayQuota int64 `json:"relay_quota"` // bytes, kept while relay is off
		// ChunkQuota is the most bytes of file chunks carried for others
		// (0: none), a pool apart from the relay quota's;
		// ChunkQuotaOfRelay says it is the relay quota (the default).
		ChunkQuota        int64 `json:"chunk_quota"`
		ChunkQuotaOfRelay bool  `json:"chunk_quota_of_relay,omitempty"`
		FileLimit         int64 `json:"file_limit"` // bytes: the largest file sent or fetched
		// FetchReleases is which releases offered over the mesh the node
		// fetches, verifies and offers on: "off", "mine" or "all".
		FetchReleases string `json:"fetch_releases"`
		// Retention is how long keys are kept and the envelopes this node
		// writes live, as "7d" (whole days) or a Go duration ("36h").
		Retention      string `json:"retention"`
		RetentionHours int    `json:"retention_hours"`
		// Flags names the settings that `grapevine up`'s flags chose for
		// this run instead of the saved ones: a change applies at once and
		// is saved, but the flag wins again when the node restarts with it.
		Flags []string `json:"flags,omitempty"`
	}
	// SettingsUpdate is the body of PUT /v1/settings: the settings to
	// change; those left out keep their value. Either every change is
	// made, or none (an error names the field refused).
	SettingsUpdate struct {
		Stealth *bool `json:"stealth,omitempty"`
		Relay   *bool `json:"relay,omitempty"`
		// RelayQuota is a size as up's --relay-quota takes it: "64MiB",
		// "1G", "1.5GB", or a number of bytes (a JSON number or string).
		RelayQuota *SizeText `json:"relay_quota,omitempty"`
		// ChunkQuota is a size as RelayQuota, 0 for none, or "relay" for
		// the same as the relay quota.
		ChunkQuota *SizeText `json:"chunk_quota,omitempty"`
		// FileLimit is a size as RelayQuota, from 1MiB to 100MiB.
		FileLimit *SizeText `json:"file_limit,omitempty"`
		// Retention is "7d" or a Go duration such as "36h", from 24h to 31d.
		Retention *string `json:"retention,omitempty"`
		// FetchReleases is "off", "mine" or "all" (node.FetchReleasesOff…).
		FetchReleases *string `json:"fetch_releases,omitempty"`
	}
)

// SizeText is a size in a request: a JSON string such as "64MiB" or a
// JSON number of bytes, kept as text for ParseSize.
type SizeText string

// UnmarshalJSON takes a string or a number.
func (s *SizeText) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = SizeText(v)
		return nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return errors.New("want a size such as \"256MiB\" or a number of bytes")
	}
	*s = SizeText(n.String())
	return nil
}

// fieldError is a request refused for one field's value: 400, with the
// field named in the response, so a form can point at it.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.msg }

func badField(field, format string, a ...any) error {
	return &fieldError{field: field, msg: field + ": " + fmt.Sprintf(format, a...)}
}

// Apply returns cur changed as u asks, or the first field refused (the
// node checks the result again when it is saved).
func (u SettingsUpdate) Apply(cur node.Settings) (node.Settings, error) {
	if u.RelayQuota != nil {
		q, err := ParseSize(string(*u.RelayQuota))
		switch {
		case err != nil:
			return cur, badField("relay_quota", "%q: %v", string(*u.RelayQuota), err)
		case q == 0:
			return cur, badField("relay_quota", "0 carries nothing: to carry nothing for others, turn relay off")
		}
		cur.RelayQuota = q
	}
	if err := u.applySizes(&cur); err != nil {
		return cur, err
	}
	if u.Retention != nil {
		d, err := ParseRetention(*u.Retention)
		if err != nil {
			return cur, badField("retention", "%q: %v", *u.Retention, err)
		}
		cur.Retention = d
	}
	if u.Stealth != nil {
		cur.Stealth = *u.Stealth
	}
	if u.Relay != nil {
		cur.Relay = *u.Relay
	}
	if u.FetchReleases != nil {
		switch f := strings.ToLower(strings.TrimSpace(*u.FetchReleases)); f {
		case node.FetchReleasesOff, node.FetchReleasesMine, node.FetchReleasesAll:
			cur.FetchReleases = f
		default:
			return cur, badField("fetch_releases", "%q: off, mine or all", *u.FetchReleases)
		}
	}
	return cur, nil
}

// applySizes changes the chunk quota and the file limit as u asks.
func (u SettingsUpdate) applySizes(cur *node.Settings) error {
	if u.ChunkQuota != nil {
		q, err := parseChunkQuota(string(*u.ChunkQuota))
		if err != nil {
			return badField("chunk_quota", "%q: %v", string(*u.ChunkQuota), err)
		}
		cur.ChunkQuota = q
	}
	if u.FileLimit != nil {
		l, err := ParseSize(string(*u.FileLimit))
		if err == nil && (l < node.MinFileLimit || l > node.MaxFileLimit) {
			err = errors.New("from 1MiB to 100MiB")
		}
		if err != nil {
			return badField("file_limit", "%q: %v", string(*u.FileLimit), err)
		}
		cur.FileLimit = l
	}
	return nil
}

// parseChunkQuota reads a size, or "relay" for node.ChunkQuotaOfRelay.
func parseChunkQuota(s string) (int64, error) {
	if strings.EqualFold(strings.TrimSpace(s), "relay") {
		return node.ChunkQuotaOfRelay, nil
	}
	return ParseSize(s)
}

// Stealther is what of the mesh applies stealth at once (*mesh.Mesh).
type Stealther interface{ SetStealth(on bool) }

// updateSettings checks u, saves and applies it. m may be nil (no mesh
// runs: the saved stealth applies when one starts).
func updateSettings(n *node.Node, m Mesh, u SettingsUpdate) (Settings, error) {
	next, err := u.Apply(n.Settings())
	if err != nil {
		return Settings{}, err
	}
	set, err := n.SaveSettings(next)
	if err != nil {
		return Settings{}, err
	}
	if st, ok := m.(Stealther); ok {
		st.SetStealth(set.Stealth)
	}
	return settingsOf(set), nil
}

func settingsOf(s node.Settings) Settings {
	chunks, ofRelay := s.ChunkQuota, s.ChunkQuota == node.ChunkQuotaOfRelay
	if ofRelay {
		chunks = s.RelayQuota
	}
	return Settings{Stealth: s.Stealth, Relay: s.Relay, RelayQuota: s.RelayQuota, ChunkQuota: chunks, ChunkQuotaOfRelay: ofRelay,
		FileLimit: s.FileLimit, FetchReleases: s.FetchReleases, Retention: FormatRetention(s.Retention), RetentionHours: int(s.Retention / time.Hour), Flags: s.Flags}
}

func (s *Server) settingsRoutes() {
	s.handle("GET /v1/settings", func(*http.Request) (any, error) { return settingsOf(s.n.Settings()), nil })
	s.handle("PUT /v1/settings", func(r *http.Request) (any, error) {
		u, err := decode[SettingsUpdate](r)
		if err != nil {
			return nil, err
		}
		return updateSettings(s.n, s.m, u)
	})
}

// Settings returns the node's settings.
func (c *Client) Settings(ctx context.Context) (Settings, error) {
	var v Settings
	return v, c.do(ctx, http.MethodGet, "/v1/settings", nil, nil, &v)
}

// UpdateSettings changes the node's settings and returns them as they are
// now.
func (c *Client) UpdateSettings(ctx context.Context, u SettingsUpdate) (Settings, error) {
	var v Settings
	return v, c.do(ctx, http.MethodPut, "/v1/settings", nil, u, &v)
}

// Settings returns the settings saved in the store.
func (l Local) Settings(ctx context.Context) (Settings, error) {
	if err := ctx.Err(); err != nil {
		return Settings{}, err
	}
	return settingsOf(l.N.Settings()), nil
}

// UpdateSettings saves changed settings in the store: a node started
// later runs with them.
func (l Local) UpdateSettings(ctx context.Context, u SettingsUpdate) (Settings, error) {
	if err := ctx.Err(); err != nil {
		return Settings{}, err
	}
	return updateSettings(l.N, nil, u)
}

// ParseSize reads a size such as 256MiB, 1G, 1GB, 1.5GiB, 512k or a number
// of bytes (spaces and case do not matter). K, M, G, T alone and KiB, MiB,
// GiB, TiB are powers of 1024; KB, MB, GB, TB powers of 1000. A size beyond
// what a 64-bit count of bytes holds is refused, as is a fraction of a byte.
// `grapevine up --relay-quota` and PUT /v1/settings read sizes alike.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	const want = "want a size such as 256MiB, 1G or 1.5GB"
	digits, frac, _ := strings.Cut(t, ".")
	isDigits := func(s string) bool { return strings.Trim(s, "0123456789") == "" }
	if digits == "" || !isDigits(digits) || !isDigits(frac) || strings.HasSuffix(t, ".") {
		return 0, errors.New(want)
	}
	v, ok := new(big.Rat).SetString(t)
	if !ok || v.Sign() < 0 {
		return 0, errors.New(want)
	}
	v.Mul(v, new(big.Rat).SetInt64(mult))
	if !v.IsInt() {
		return 0, errors.New("that is not a whole number of bytes")
	}
	if !v.Num().IsInt64() {
		return 0, fmt.Errorf("%s is more than any disk holds (at most 8EiB)", strings.TrimSpace(s))
	}
	return v.Num().Int64(), nil
}

// ParseRetention reads a retention: whole days ("7d") or a Go duration
// ("36h", "90h30m"), from node.MinRetention to node.MaxRetention.
func ParseRetention(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(t, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || strings.Trim(days, "0123456789") != "" {
			return 0, errors.New("want whole days such as 7d, or hours such as 36h")
		}
		if n > int(node.MaxRetention/(24*time.Hour)) {
			return 0, fmt.Errorf("at most %s", FormatRetention(node.MaxRetention))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, errors.New("want whole days such as 7d, or hours such as 36h")
		}
	}
	switch {
	case d < node.MinRetention:
		return 0, fmt.Errorf("at least %s: keys are kept per day", FormatRetention(node.MinRetention))
	case d > node.MaxRetention:
		return 0, fmt.Errorf("at most %s, the longest an envelope lives", FormatRetention(node.MaxRetention))
	}
	return d, nil
}

// FormatRetention writes whole days as "7d", anything else as a Go
// duration: what ParseRetention reads back.
func FormatRetention(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
