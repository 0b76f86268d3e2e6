package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/grapevine-mesh/grapevine/internal/testkit"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/discovery"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// TestSettingsRefused sends settings that must be refused: each answer is a
// 400 that names the field, and nothing changes (not even the fields of the
// same request that were fine).
func TestSettingsRefused(t *testing.T) {
	f := newFixture(t)
	hc := rawClient(f.home)
	before := must(f.c.Settings(ctx))(t)
	cases := []struct{ body, field, text string }{
		{`{"relay_quota": "lots"}`, "relay_quota", `relay_quota: "lots": want a size such as 256MiB`},
		{`{"relay_quota": "1.5B"}`, "relay_quota", "not a whole number of bytes"},
		{`{"relay_quota": "-5MiB"}`, "relay_quota", "want a size"},
		{`{"relay_quota": "99999999999GiB"}`, "relay_quota", "more than any disk holds"},
		{`{"relay_quota": 0, "stealth": true}`, "relay_quota", "0 carries nothing: to carry nothing for others, turn relay off"},
		{`{"relay_quota": 1e3}`, "relay_quota", "want a size"},
		{`{"file_limit": "512KiB"}`, "file_limit", `file_limit: "512KiB": from 1MiB to 100MiB`},
		{`{"file_limit": "101MiB"}`, "file_limit", "from 1MiB to 100MiB"},
		{`{"chunk_quota": "some"}`, "chunk_quota", `chunk_quota: "some": want a size`},
		{`{"retention": "12h", "relay": false}`, "retention", "at least 1d"},
		{`{"retention": "32d"}`, "retention", "at most 31d"},
		{`{"retention": "744h1s"}`, "retention", "at most 31d"},
		{`{"retention": "a week"}`, "retention", "want whole days such as 7d"},
		{`{"retention": "-3d"}`, "retention", "want whole days"},
		{`{"retention": 7}`, "", "malformed JSON"},
		{`{"stealth": "yes"}`, "", "malformed JSON"},
		{`{"quota": "1G"}`, "", `unknown field "quota"`},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodPut, "http://grapevine/v1/settings", strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e ErrorResponse
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 400 || e.Code != CodeBadRequest || e.Field != tc.field || !strings.Contains(e.Error, tc.text) {
			t.Errorf("PUT %s: %d %+v (%v), want 400 naming %q saying %q", tc.body, resp.StatusCode, e, err, tc.field, tc.text)
		}
	}
	if after := must(f.c.Settings(ctx))(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused requests changed the settings: %+v, before %+v", after, before)
	}
	// The client reports the field too.
	_, err := f.c.UpdateSettings(ctx, SettingsUpdate{Retention: ptr("0d")})
	if ae, ok := err.(*Error); !ok || ae.Field != "retention" {
		t.Errorf("client error %#v, want one naming retention", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestSettingsLive changes every setting of a node with a real mesh running,
// through the API, and sees each take effect at once: a lower quota evicts
// what is carried beyond it, relaying off drops and refuses what others'
// envelopes, stealth stops the beacons (and off starts them again), and a
// restart keeps it all.
func TestSettingsLive(t *testing.T) {
	lo := testkit.Loopback(t)
	home := shortDir(t)
	n := newNode(t, home, "Alice")
	beaconPort := testkit.FreeUDPPort(t)
	disc := discovery.Config{BeaconPort: beaconPort, IncludeLoopback: true, Interval: 40 * time.Millisecond,
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{lo}, nil }}
	m := mesh.New(n, mesh.Config{Listen: "127.0.0.1:0", Discovery: true, DiscoveryConfig: disc})
	mctx, stopMesh := context.WithCancel(context.Background())
	meshDone := make(chan error, 1)
	go func() { meshDone <- m.Serve(mctx) }()
	t.Cleanup(func() { stopMesh(); <-meshDone })
	<-m.Ready()
	stop := serve(t, n, home, m)
	c, err := Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A listener that only hears (sends no beacon): it counts Alice's beacons.
	var heard atomic.Int64
	ear := discovery.New(discovery.Config{ListenOnly: true, BeaconPort: beaconPort, IncludeLoopback: true,
		Interfaces: func() ([]net.Interface, error) { return []net.Interface{lo}, nil }})
	ectx, stopEar := context.WithCancel(context.Background())
	earDone := make(chan struct{})
	go func() { ear.Serve(ectx, func(discovery.Sighting) { heard.Add(1) }); close(earDone) }()
	defer func() { stopEar(); <-earDone }()
	waitFor(t, "Alice's beacons", func() bool { return heard.Load() > 0 })

	set := must(c.Settings(ctx))(t)
	if set.Stealth || !set.Relay || set.RelayQuota != node.DefaultRelayQuota || set.ChunkQuota != set.RelayQuota || !set.ChunkQuotaOfRelay ||
		set.FileLimit != node.DefaultFileLimit || set.Retention != "7d" || set.RetentionHours != 168 || len(set.Flags) != 0 {
		t.Fatalf("a new node's settings: %+v", set)
	}

	// Alice carries mail between two others.
	bundle := strangersMail(t, 40)
	rep := must(c.ImportFile(ctx, bundle))(t)
	if rep.New == 0 {
		t.Fatalf("nothing to carry: %+v", rep)
	}
	st := must(c.Status(ctx))(t)
	if st.Carried == 0 || !st.Relay || !st.Discovery {
		t.Fatalf("status before: %+v", st)
	}

	// A lower quota evicts at once.
	quota := st.CarriedBytes / 2
	set = must(c.UpdateSettings(ctx, SettingsUpdate{RelayQuota: ptr(SizeText(fmt.Sprint(quota)))}))(t)
	st = must(c.Status(ctx))(t)
	if set.RelayQuota != quota || st.RelayQuota != quota || st.CarriedBytes > quota || st.Carried == 0 {
		t.Errorf("after quota %d: settings %+v, status quota %d carrying %d B in %d envelopes", quota, set, st.RelayQuota, st.CarriedBytes, st.Carried)
	}

	// Relay off: nothing carried for others any more, and nothing taken.
	set = must(c.UpdateSettings(ctx, SettingsUpdate{Relay: ptr(false)}))(t)
	st = must(c.Status(ctx))(t)
	if set.Relay || set.RelayQuota != quota || st.Relay || st.Carried != 0 {
		t.Errorf("after relay off: settings %+v, status %+v", set, st)
	}
	if rep := must(c.ImportFile(ctx, bundle))(t); rep.New != 0 || rep.Refused == 0 {
		t.Errorf("relay off, import took %+v", rep)
	}

	// Stealth: the beacons stop, and start again once it is off.
	set = must(c.UpdateSettings(ctx, SettingsUpdate{Stealth: ptr(true), Retention: ptr("3d"),
		FileLimit: ptr(SizeText("32MiB")), ChunkQuota: ptr(SizeText("0"))}))(t)
	if !set.Stealth || set.Retention != "3d" || set.FileLimit != 32<<20 || set.ChunkQuota != 0 || set.ChunkQuotaOfRelay || must(c.Status(ctx))(t).Discovery {
		t.Errorf("after stealth on: %+v", set)
	}
	if cfg := n.Config(); cfg.Retention != 72*time.Hour {
		t.Errorf("retention in force: %s", cfg.Retention)
	}
	time.Sleep(100 * time.Millisecond) // beacons in flight arrive
	quiet := heard.Load()
	time.Sleep(400 * time.Millisecond) // ten intervals
	if got := heard.Load(); got != quiet {
		t.Errorf("stealth on, yet %d more beacons were heard", got-quiet)
	}
	must(c.UpdateSettings(ctx, SettingsUpdate{Stealth: ptr(false)}))(t)
	waitFor(t, "beacons again after stealth off", func() bool { return heard.Load() > quiet })
	must(c.UpdateSettings(ctx, SettingsUpdate{Stealth: ptr(true), Relay: ptr(true)}))(t)

	// A restart keeps them all.
	stop()
	stopMesh()
	<-meshDone
	meshDone <- nil // for the cleanup
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2, err := node.Open(home, pass, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	got := settingsOf(n2.Settings())
	want := Settings{Stealth: true, Relay: true, RelayQuota: quota, FileLimit: 32 << 20, FetchReleases: node.FetchReleasesOff, Retention: "3d", RetentionHours: 72}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after a restart: %+v, want %+v", got, want)
	}
	if st, _ := n2.Stats(); st.RelayQuota != quota {
		t.Errorf("after a restart the quota in force is %d, want %d", st.RelayQuota, quota)
	}
}

// strangersMail is a bundle of envelopes from Bob to Carol, which Alice can
// only carry.
func strangersMail(t *testing.T, messages int) string {
	t.Helper()
	dir := t.TempDir()
	bob, err := node.Init(filepath.Join(dir, "bob"), pass, "Bob", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	carol, err := node.Init(filepath.Join(dir, "carol"), pass, "Carol", node.DefaultConfig, node.Options{KDF: store.TestKDF()})
	if err != nil {
		t.Fatal(err)
	}
	defer carol.Close()
	self, err := carol.Self()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(self.Link, ""); err != nil {
		t.Fatal(err)
	}
	for i := range messages {
		if _, err := bob.Send("Carol", fmt.Sprintf("message %d %s", i, bytes.Repeat([]byte("x"), 500))); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "bob.gvb")
	if _, err := bob.ExportFile(context.Background(), path, node.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
