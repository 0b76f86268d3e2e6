package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/discovery"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
)

// upOptions are the flags of `grapevine up`.
type upOptions struct {
	receiptDelay time.Duration
	name         string
	listen       string
	peers        []string
	stealth      bool
	beaconEvery  time.Duration
	keyRotation  time.Duration
	noRelay      bool
	noDiscovery  bool
	quota        string
	chunkQuota   string // a size or "relay": node.Settings.ChunkQuota
	fileLimit    string
	verbose      bool
	quiet        bool // no invite and QR at start (the demo starts many nodes)
	ui           uiOptions
	// given says which flags were given on the command line: those win
	// over the saved settings (node.Settings) for this run.
	given func(name string) bool
}

func (c *cli) upCmd() *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up [--listen ADDR] [--peer HOST:PORT]... [--stealth] [--no-relay]",
		Short: "Run your node: find neighbours, sync, relay (creates the identity if needed)",
		Long: `Run the node in the foreground until Ctrl-C. It listens for neighbours on TCP,
finds others on the local network by multicast beacons (unless --stealth or
--no-discovery), dials --peer addresses (redialled with backoff), agrees with
each neighbour on what the other lacks, and carries envelopes for everyone
within the relay quota.

Stealth, relaying, the relay and chunk quotas and the file limit are settings
saved in the home (grapevine settings, or the web UI, change them while the
node runs): the node starts with the saved ones. --stealth, --no-relay,
--relay-quota, --chunk-quota and --file-limit, when given, win over them for
this run only.

While it runs, every other grapevine command talks to it through the local
API socket in the home directory, and needs no passphrase.

With no identity in the home yet, up creates one: the name comes from --name
or a prompt; the passphrase as for every command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.given = cmd.Flags().Changed
			return c.up(cmd.Context(), o) // Ctrl-C or SIGTERM cancel it (run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "your display name, when up creates the identity")
	f.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", mesh.DefaultPort), "TCP address to listen on for neighbours (\"\" for none)")
	f.StringArrayVar(&o.peers, "peer", nil, "a static peer HOST:PORT to keep a link to (repeatable), e.g. 192.0.2.7:7342, [2001:db8::7]:7342, bridge.example.org:7342")
	f.BoolVar(&o.stealth, "stealth", false, "send nothing unasked on the local network: no beacons, no multicast joins, no dials to nodes heard; link only with --peer addresses and those who dial you")
	f.DurationVar(&o.beaconEvery, "beacon-interval", discovery.DefaultInterval, "mean time between two LAN beacons (each gap random within ±50 %); shorter finds neighbours sooner and costs more air")
	f.DurationVar(&o.keyRotation, "key-rotation", time.Hour, "new link key and beacon value at every whole multiple of this on the clock")
	f.Lookup("key-rotation").Hidden = true // for tests: an hour is the setting the privacy analysis assumes
	f.BoolVar(&o.noDiscovery, "no-discovery", false, "no LAN discovery at all (neither beacons nor listening for them)")
	f.BoolVar(&o.noRelay, "no-relay", false, "carry nothing for others: keep only your own mail")
	f.StringVar(&o.quota, "relay-quota", "256MiB", "most space used to carry envelopes for others: 64MiB, 1G, 1GB, 1.5GiB, 0 for none (K, M, G, T alone and KiB… are powers of 1024; KB, MB… of 1000)")
	f.StringVar(&o.chunkQuota, "chunk-quota", "relay", "most space used to carry chunks of others' files, apart from --relay-quota: a size, 0 for none, or relay for as much as the relay quota")
	f.StringVar(&o.fileLimit, "file-limit", "16MiB", "largest file sent or fetched: 1MiB to 100MiB")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log every link event")
	f.BoolVar(&o.quiet, "quiet", false, "do not print the invite and QR code at start")
	f.DurationVar(&o.receiptDelay, "receipt-delay", node.DefaultConfig.ReceiptDelay, "when up creates the identity: the longest your receipts wait before they leave (see init --help)")
	addUIFlags(f, &o.ui)
	return cmd
}

func (c *cli) up(ctx context.Context, o upOptions) error {
	quota, err := parseSize(o.quota)
	if err != nil {
		return fmt.Errorf("invalid --relay-quota %q: %w", o.quota, err)
	}
	for _, p := range o.peers {
		if err := checkPeer(p); err != nil {
			return fmt.Errorf("invalid --peer %q: %w", p, err)
		}
	}
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	if cl, err := api.Dial(home); err == nil {
		cl.Close()
		return fmt.Errorf("a node is already running in %s", home)
	}
	if err := c.checkHome(home); err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ui, waitUI, err := c.startUI(ctx, &o, log) // ui.go
	if err != nil {
		return err
	}
	defer waitUI()
	defer cancel() // before waitUI: the web UI stops with ctx

	// The socket first: a command run from now on finds it and waits for
	// this node ("starting") instead of opening the store itself, which
	// would hold the store's lock against this node.
	ln, err := api.Listen(home)
	if err != nil {
		return err
	}
	srv := api.NewStarting(log)
	var wg sync.WaitGroup
	var apiErr error
	wg.Go(func() { apiErr = srv.Serve(ctx, ln) })
	stopAPI := func() { cancel(); wg.Wait() }

	var n *node.Node
	if o.ui.locked {
		n, err = c.unlockViaUI(ctx, ui, home)
	} else {
		n, err = c.openForUp(ctx, home, o.name, o.receiptDelay)
	}
	if err != nil {
		stopAPI()
		return err
	}
	defer n.Close()
	defer stopAPI() // before the node closes: no request may reach a closed node
	for _, w := range n.StoreWarnings() {
		log.Warn("the store was opened with damage", "problem", w)
	}

	if o.beaconEvery < 100*time.Millisecond || o.keyRotation < time.Second {
		stopAPI()
		return fmt.Errorf("invalid --beacon-interval %v or --key-rotation %v: at least 100ms and 1s", o.beaconEvery, o.keyRotation)
	}
	set, err := runSettings(n, o, quota)
	if err != nil {
		stopAPI()
		return err
	}
	o.stealth = set.Stealth // for announce
	// The node has its relay quota already (RelayQuota 0 keeps it).
	m := mesh.New(n, mesh.Config{Listen: o.listen, Peers: o.peers, Discovery: !o.noDiscovery,
		Stealth: set.Stealth, Log: log, KeyRotation: o.keyRotation,
		DiscoveryConfig: discovery.Config{Interval: o.beaconEvery}})
	srv.Ready(n, m)
	serveUI(ui, srv, n, m)
	go func() { // announce once listening
		select {
		case <-m.Ready():
			c.announce(n, m, home, o)
		case <-ctx.Done():
		}
	}()
	// If the store's files are deleted or replaced under the node, nothing
	// it receives or sends from then on could be kept: stop, and say so.
	var storeErr error
	wg.Go(func() {
		t := time.NewTicker(storeCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := n.CheckStore(); err != nil {
					storeErr = err
					log.Error("stopping the node: its store is gone", "err", err)
					cancel()
					return
				}
			}
		}
	})
	err = m.Serve(ctx)
	stopAPI()
	switch {
	case storeErr != nil:
		return fmt.Errorf("%w: the node stopped, since nothing it received or sent could be kept. "+
			"Restore the home from a backup; or, to start afresh with a new identity, run `grapevine wipe`, then `grapevine up`", storeErr)
	case err != nil:
		return err
	case apiErr != nil:
		return fmt.Errorf("local API failed: %w", apiErr)
	}
	fmt.Fprintln(c.stderr, "Stopped.")
	return nil
}

// runSettings starts from the settings saved in the home and lets the
// flags given to up win for this run (not saved: a systemd unit's options
// keep their say at every start, whatever was changed in the UI meanwhile).
func runSettings(n *node.Node, o upOptions, quota int64) (node.Settings, error) {
	set := n.Settings()
	given := o.given
	if given == nil { // not from the command line: no flag was given
		given = func(string) bool { return false }
	}
	var flags []string
	if given("stealth") {
		set.Stealth, flags = o.stealth, append(flags, "stealth")
	}
	if given("relay-quota") && quota > 0 {
		set.RelayQuota, flags = quota, append(flags, "relay_quota")
	}
	if given("no-relay") || given("relay-quota") && quota == 0 {
		set.Relay, flags = !o.noRelay && quota != 0, append(flags, "relay")
	}
	flags, err := sizeFlags(&set, o, given, flags)
	if err != nil {
		return set, err
	}
	if len(flags) == 0 {
		return set, nil
	}
	if err := n.RunWith(set, flags); err != nil {
		return set, fmt.Errorf("failed to apply up's flags: %w", err)
	}
	return n.Settings(), nil
}

// sizeFlags applies --chunk-quota and --file-limit, when given, to set; the
// API reads them as it reads the settings' (api.SettingsUpdate).
func sizeFlags(set *node.Settings, o upOptions, given func(string) bool, flags []string) ([]string, error) {
	var u api.SettingsUpdate
	if given("chunk-quota") {
		u.ChunkQuota, flags = sizeText(o.chunkQuota), append(flags, "chunk_quota")
	}
	if given("file-limit") {
		u.FileLimit, flags = sizeText(o.fileLimit), append(flags, "file_limit")
	}
	next, err := u.Apply(*set)
	if err != nil {
		return flags, fmt.Errorf("invalid --%s", strings.Replace(err.Error(), "_", "-", 1)) // the field, as the flag
	}
	*set = next
	return flags, nil
}

// storeCheckInterval is how often a running node checks that its store's
// files are still there.
const storeCheckInterval = 2 * time.Second

// lockWait is how long up waits for a command that holds the store (it
// unlocks it with a memory-hard KDF, then works) to let go.
const lockWait = time.Minute

// openForUp unlocks the home for a node, creating the identity first if
// there is none. If another grapevine process holds the store, it says so
// and waits for it.
func (c *cli) openForUp(ctx context.Context, home, name string, receiptDelay time.Duration) (*node.Node, error) {
	if !store.Exists(home) {
		cfg := node.DefaultConfig
		cfg.ReceiptDelay = receiptDelay
		n, err := c.create(ctx, home, name, cfg, true)
		if err == nil {
			self, _ := n.Self()
			fmt.Fprintf(c.stderr, "Created identity %q in %s\n", safe(self.Name), home)
		}
		return n, err
	}
	pass, err := c.passphrase(ctx, false)
	if err != nil {
		return nil, err
	}
	n, err := c.openNode(home, pass, 2*time.Second)
	if errors.Is(err, store.ErrInUse) {
		fmt.Fprintf(c.stderr, "Waiting for another grapevine command to let go of %s…\n", home)
		n, err = c.openNode(home, pass, lockWait)
	}
	if err != nil {
		return nil, err
	}
	if name != "" {
		if self, err := n.Self(); err == nil && self.Name != name {
			fmt.Fprintf(c.stderr, "Note: %s already holds the identity %q; --name %q is ignored (rename yourself for new contacts only by making a new home).\n",
				home, safe(self.Name), safe(name))
		}
	}
	return n, nil
}

func (c *cli) announce(n *node.Node, m *mesh.Mesh, home string, o upOptions) {
	self, err := n.Self()
	if err != nil {
		fmt.Fprintf(c.stderr, "grapevine: %v\n", err)
		return
	}
	w := c.stdout
	fmt.Fprintf(w, "Grapevine node %q is up.\nFingerprint: %s\n", safe(self.Name), groupFP(self.Fingerprint))
	if !o.quiet {
		fmt.Fprintln(w)
		if err := writeQRText(w, self.Link); err == nil {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Invite: %s\n(works until %s, or until you accept a request that came through it)\n\n",
			self.Link, self.InviteExpires.Local().Format("2006-01-02 15:04"))
	}
	if st, err := n.Stats(); err == nil && st.Clock != "" {
		fmt.Fprintf(c.stderr, "WARNING: the device's clock is not trusted: %s\n", st.Clock)
	}
	listen := strings.Join(m.Addrs(), ", ")
	if listen == "" {
		listen = "(not listening)"
	}
	fmt.Fprintf(w, "Listening: %s\n", listen)
	disc := "on"
	switch {
	case o.noDiscovery:
		disc = "off"
	case o.stealth:
		disc = "stealth (sends nothing unasked: no beacons, not listening for them)"
	}
	fmt.Fprintf(w, "Discovery: %s\n", disc)
	for _, p := range o.peers {
		fmt.Fprintf(w, "Peer:      %s\n", p)
	}
	if o.ui.url != "" {
		fmt.Fprintf(w, "Web UI:    %s\n", o.ui.url)
	}
	fmt.Fprintf(w, "Local API: %s\nPress Ctrl-C to stop.\n", api.SocketPath(home))
}

// checkPeer refuses what cannot be a peer's address: HOST:PORT, with a port
// from 1 to 65535 and a host name or IP address (IPv6 in brackets).
func checkPeer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT, e.g. 192.0.2.7:%d or [2001:db8::7]:%d", mesh.DefaultPort, mesh.DefaultPort)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("the port %q is not a number from 1 to 65535", port)
	}
	switch {
	case host == "":
		return errors.New("the host is missing")
	case net.ParseIP(host) != nil:
		return nil
	case strings.Contains(host, "%"): // a zone, as in fe80::1%eth0
		if net.ParseIP(host[:strings.IndexByte(host, '%')]) != nil {
			return nil
		}
	}
	if len(host) > 253 {
		return errors.New("the host name is too long")
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%q is not a host name or IP address", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not a host name or IP address", host)
			}
		}
	}
	return nil
}

// parseSize reads a size as --relay-quota and `settings set quota=` take
// it (api.ParseSize: the local API reads sizes alike).
func parseSize(s string) (int64, error) { return api.ParseSize(s) }
