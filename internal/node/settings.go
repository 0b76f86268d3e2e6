package node

// Settings the owner changes while the node runs — stealth, relaying, the
// relay quota, the chunk quota, the file limit, retention — from the web UI, `grapevine settings` or the
// local API (GET/PUT /v1/settings). They are saved in the store, so a
// restart keeps them; `grapevine up`'s flags, when given, win for that run.

import (
	"fmt"
	"slices"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/attach"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// Settings are the node's changeable settings.
type Settings struct {
	// Stealth: send nothing unasked on the LAN (no beacons, no multicast
	// joins). The node only keeps the choice; the mesh applies it
	// (mesh.SetStealth).
	Stealth bool `json:"stealth"`
	// Relay: carry envelopes for others. Off, only one's own mail is kept.
	Relay bool `json:"relay"`
	// RelayQuota is the most bytes carried for others while Relay is on
	// (kept while it is off, so turning relaying on again restores it).
	RelayQuota int64 `json:"relay_quota"`
	// ChunkQuota is the most bytes of file chunks carried for others, a
	// pool apart from RelayQuota's so that files never push texts out
	// (SPEC §16.4); 0 carries no chunks for others, ChunkQuotaOfRelay (the
	// default) makes it the same as RelayQuota.
	ChunkQuota int64 `json:"chunk_quota"`
	// FileLimit is the largest file sent or fetched, in bytes (SPEC §16.10).
	FileLimit int64 `json:"file_limit"`
	// FetchReleases says which releases offered over the mesh this node
	// fetches, verifies and offers on (SPEC §16.11): FetchReleasesOff (the
	// default: a phone does not spend its battery and data on 16 MiB
	// unasked; offers and chunks are still carried, as any), Mine or All.
	FetchReleases string `json:"fetch_releases"`
	// Retention is Config.Retention: how long keys are kept and how long
	// the envelopes this node writes live.
	Retention time.Duration `json:"retention"`
	// Flags names the settings that `grapevine up`'s flags chose for this
	// run instead of the saved ones ("stealth", "relay", "relay_quota",
	// "chunk_quota", "file_limit").
	// A saved change applies at once all the same; the flag wins again at
	// the next start.
	Flags []string `json:"flags,omitempty"`
}

// Bounds of the settings. Retention is at least one key period (a day:
// keys are kept per period) and at most the protocol's envelope lifetime.
// A file limit is at least a MiB (smaller files are texts' business, and a
// lower limit would refuse most photos) and at most 100 MiB: a file is read
// whole into memory to be sent, and a bundle or an internet peer carries
// that much in reasonable time, the mesh's 16 MiB default far less.
const (
	MinRetention = 24 * time.Hour
	MaxRetention = MaxLifetime

	MinFileLimit     = 1 << 20
	MaxFileLimit     = 100 << 20
	DefaultFileLimit = attach.DefaultMaxFileSize

	// ChunkQuotaOfRelay as Settings.ChunkQuota: as much as the relay quota.
	ChunkQuotaOfRelay = -1
)

// ReasonInvalidSetting marks an *Error about a setting out of bounds.
const ReasonInvalidSetting = "invalid_setting"

// settingsKey holds the saved settings but retention, which lives in the
// config record with the rest of the policy.
const settingsKey = "settings"

// settingsRecord is what is saved. Fields a record saved by an older
// grapevine lacks keep their defaults when it is read.
type settingsRecord struct {
	Stealth    bool  `json:"stealth"`
	Relay      bool  `json:"relay"`
	RelayQuota int64 `json:"relay_quota"`
	ChunkQuota int64 `json:"chunk_quota"`
	FileLimit  int64 `json:"file_limit"`
	// FetchReleases is Settings.FetchReleases.
	FetchReleases string `json:"fetch_releases"`
}

// defaultSettings is what a node without saved settings runs with.
func defaultSettings() settingsRecord {
	return settingsRecord{Relay: true, RelayQuota: DefaultRelayQuota, ChunkQuota: ChunkQuotaOfRelay, FileLimit: DefaultFileLimit,
		FetchReleases: FetchReleasesOff}
}

func (s Settings) record() settingsRecord {
	fetch := s.FetchReleases
	if fetch == "" {
		fetch = FetchReleasesOff
	}
	return settingsRecord{Stealth: s.Stealth, Relay: s.Relay, RelayQuota: s.RelayQuota, ChunkQuota: s.ChunkQuota, FileLimit: s.FileLimit,
		FetchReleases: fetch}
}

// Check refuses settings out of bounds; the error names the field.
func (s Settings) Check() error {
	if err := s.record().check(); err != nil {
		return err
	}
	switch {
	case s.Retention < MinRetention:
		return invalid(ReasonInvalidSetting, "retention %s: must be at least %s (one key period)", s.Retention, MinRetention)
	case s.Retention > MaxRetention:
		return invalid(ReasonInvalidSetting, "retention %s: must be at most %s (the protocol's envelope lifetime)", s.Retention, MaxRetention)
	}
	return nil
}

// check refuses the saved settings out of bounds (retention is the
// config's).
func (r settingsRecord) check() error {
	switch {
	case r.RelayQuota <= 0:
		return invalid(ReasonInvalidSetting, "relay_quota %d: must be more than 0 bytes (to carry nothing for others, turn relay off)", r.RelayQuota)
	case r.ChunkQuota < ChunkQuotaOfRelay:
		return invalid(ReasonInvalidSetting, "chunk_quota %d: must be 0 bytes or more (0 carries no chunks for others)", r.ChunkQuota)
	case r.FileLimit < MinFileLimit || r.FileLimit > MaxFileLimit:
		return invalid(ReasonInvalidSetting, "file_limit %d bytes: must be from %d (1 MiB) to %d (100 MiB)", r.FileLimit, MinFileLimit, MaxFileLimit)
	case r.FetchReleases != FetchReleasesOff && r.FetchReleases != FetchReleasesMine && r.FetchReleases != FetchReleasesAll:
		return invalid(ReasonInvalidSetting, "fetch_releases %q: must be off, mine or all", r.FetchReleases)
	}
	return nil
}

// loadSettings reads the saved settings (defaults if none were saved).
func loadSettings(tx *store.Tx) (settingsRecord, error) {
	rec := defaultSettings()
	_, err := getJSON(tx, colSelf, []byte(settingsKey), &rec)
	return rec, err
}

// Settings returns the settings the node runs with now.
func (n *Node) Settings() Settings {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.settingsLocked()
}

func (n *Node) settingsLocked() Settings {
	return Settings{Stealth: n.set.Stealth, Relay: n.set.Relay, RelayQuota: n.set.RelayQuota, ChunkQuota: n.set.ChunkQuota,
		FileLimit: n.set.FileLimit, FetchReleases: n.set.FetchReleases, Retention: n.cfg.Retention, Flags: slices.Clone(n.setFlags)}
}

// applySettings makes s the live settings (with n.mu held); retention is
// the caller's.
func (n *Node) applySettings(s settingsRecord) {
	n.set = s
	n.quota = 0
	if s.Relay {
		n.quota = s.RelayQuota
	}
}

// chunkQuota is the most bytes of chunks carried for others now (with n.mu
// held): none while not relaying.
func (n *Node) chunkQuota() int64 {
	if n.quota <= 0 || n.set.ChunkQuota == ChunkQuotaOfRelay {
		return n.quota
	}
	return n.set.ChunkQuota
}

// RunWith applies settings for this run only, without saving them: what
// `grapevine up`'s flags chose. flags names the settings they set (see
// Settings.Flags). Retention is not taken from s: no flag sets it.
func (n *Node) RunWith(s Settings, flags []string) error {
	if err := s.record().check(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.applySettings(s.record())
	n.setFlags = slices.Clone(flags)
	return nil
}

// SaveSettings checks s, saves it and applies it at once: a lower quota
// evicts what is carried beyond it, relaying off drops everything carried
// for others (and refuses more), a shorter retention forgets the keys
// now outside it, and fetching releases turned on joins
// #grapevine-releases and reads the offers carried here. Nothing changes if s is refused. Stealth is the mesh's to
// apply. It returns the settings now in force.
func (n *Node) SaveSettings(s Settings) (Settings, error) {
	if err := s.Check(); err != nil {
		return Settings{}, err
	}
	n.mu.Lock()
	before, noShelf := n.set.FetchReleases, n.rel == nil
	n.mu.Unlock()
	fetch := s.record().FetchReleases
	if fetch != FetchReleasesOff && noShelf {
		return Settings{}, n.noReleases()
	}
	set, err := n.saveSettings(s)
	if err == nil && fetch != before {
		err = n.releasesSettingChanged(fetch) // releases.go
	}
	return set, err
}

func (n *Node) saveSettings(s Settings) (Settings, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rec := s.record()
	cfg := n.cfg
	cfg.Retention = s.Retention
	if err := cfg.Validate(); err != nil {
		return Settings{}, invalid(ReasonInvalidSetting, "%v", err)
	}
	err := n.update(func(tx *store.Tx) error {
		if err := putJSON(tx, colSelf, []byte(settingsKey), rec, store.Forever); err != nil {
			return err
		}
		return putJSON(tx, colSelf, []byte("config"), cfg, store.Forever)
	})
	if err != nil {
		return Settings{}, fmt.Errorf("failed to save the settings: %w", err)
	}
	retentionChanged := n.cfg.Retention != cfg.Retention
	n.cfg = cfg
	n.applySettings(rec)
	var rep IngestReport
	if err := n.enforceQuota(&rep); err != nil {
		return n.settingsLocked(), err
	}
	if retentionChanged {
		// The keys outside the new window go now, not at the next
		// maintenance; a longer window cannot bring back what was forgotten.
		if err := n.maintain(); err != nil {
			return n.settingsLocked(), err
		}
	}
	if rep.Evicted > 0 {
		n.log.Info("settings: evicted carried envelopes beyond the new relay quota", "evicted", rep.Evicted)
	}
	return n.settingsLocked(), nil
}
