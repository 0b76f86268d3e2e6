package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/grapevine-mesh/grapevine/internal/api"
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
	noRelay      bool
	noDiscovery  bool
	quota        string
	verbose      bool
	quiet        bool // no invite and QR at start (the demo starts many nodes)
	ui           uiOptions
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

While it runs, every other grapevine command talks to it through the local
API socket in the home directory, and needs no passphrase.

With no identity in the home yet, up creates one: the name comes from --name
or a prompt; the passphrase as for every command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.up(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "your display name, when up creates the identity")
	f.StringVar(&o.listen, "listen", fmt.Sprintf(":%d", mesh.DefaultPort), "TCP address to listen on for neighbours (\"\" for none)")
	f.StringArrayVar(&o.peers, "peer", nil, "a static peer HOST:PORT to keep a link to (repeatable)")
	f.BoolVar(&o.stealth, "stealth", false, "never send beacons: only listen, and dial peers you know or hear")
	f.BoolVar(&o.noDiscovery, "no-discovery", false, "no LAN discovery at all (neither beacons nor listening for them)")
	f.BoolVar(&o.noRelay, "no-relay", false, "carry nothing for others: keep only your own mail")
	f.StringVar(&o.quota, "relay-quota", "256MiB", "most space used to carry envelopes for others (e.g. 64MiB, 1GiB)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log every link event")
	f.BoolVar(&o.quiet, "quiet", false, "do not print the invite and QR code at start")
	f.DurationVar(&o.receiptDelay, "receipt-delay", node.DefaultConfig.ReceiptDelay, "when up creates the identity: the longest your receipts wait before they leave (see init --help)")
	addUIFlags(f, &o.ui)
	return cmd
}

func (c *cli) up(ctx context.Context, o upOptions) error {
	quota, err := parseSize(o.quota)
	if err != nil {
		return fmt.Errorf("invalid --relay-quota: %w", err)
	}
	if o.noRelay {
		quota = -1
	}
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	if cl, err := api.Dial(home); err == nil {
		cl.Close()
		return fmt.Errorf("a node is already running in %s", home)
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancelUI := context.WithCancel(ctx)
	defer cancelUI()
	ui, waitUI, err := c.startUI(ctx, &o, log) // ui.go
	if err != nil {
		return err
	}
	defer waitUI()
	defer cancelUI()
	var n *node.Node
	if o.ui.locked {
		n, err = c.unlockViaUI(ctx, ui, home)
	} else {
		n, err = c.openOrCreate(home, o.name, o.receiptDelay)
	}
	if err != nil {
		return err
	}
	defer n.Close()
	m := mesh.New(n, mesh.Config{Listen: o.listen, Peers: o.peers, Discovery: !o.noDiscovery,
		Stealth: o.stealth, RelayQuota: quota, Log: log})
	ln, err := api.Listen(home)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var apiErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		a := api.NewServer(n, m, log)
		serveUI(ui, a, n, m)
		apiErr = a.Serve(ctx, ln)
	}()
	go func() { // announce once listening
		select {
		case <-m.Ready():
			c.announce(n, m, home, o)
		case <-ctx.Done():
		}
	}()
	err = m.Serve(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		return err
	}
	if apiErr != nil {
		return fmt.Errorf("local API failed: %w", apiErr)
	}
	fmt.Fprintln(c.stderr, "Stopped.")
	return nil
}

func (c *cli) announce(n *node.Node, m *mesh.Mesh, home string, o upOptions) {
	self, err := n.Self()
	if err != nil {
		fmt.Fprintf(c.stderr, "grapevine: %v\n", err)
		return
	}
	w := c.stdout
	fmt.Fprintf(w, "Grapevine node %q is up.\nFingerprint: %s\n", self.Name, groupFP(self.Fingerprint))
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
		disc = "stealth (listening only, no beacons)"
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

// openOrCreate unlocks the home, creating the identity first if there is none.
func (c *cli) openOrCreate(home, name string, receiptDelay time.Duration) (*node.Node, error) {
	if store.Exists(home) {
		return c.open()
	}
	if name == "" {
		var err error
		if name, err = c.ask("Your name (what contacts see when you add them): "); err != nil {
			return nil, fmt.Errorf("no identity in %s and no --name: %w", home, err)
		}
	}
	pass, err := c.passphrase(true)
	if err != nil {
		return nil, err
	}
	cfg := node.DefaultConfig
	cfg.ReceiptDelay = receiptDelay
	n, err := node.Init(home, pass, name, cfg, node.Options{})
	if err != nil {
		return nil, fmt.Errorf("failed to create identity: %w", err)
	}
	fmt.Fprintf(c.stderr, "Created identity %q in %s\n", name, home)
	return n, nil
}

// ask reads one line from a terminal.
func (c *cli) ask(prompt string) (string, error) {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("not on a terminal to ask")
	}
	fmt.Fprint(c.stderr, prompt)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// parseSize reads sizes such as 256MiB, 1GiB, 64MB or a number of bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size such as 256MiB", s)
	}
	return v * mult, nil
}
