package main

// The web UI that `grapevine up` serves (internal/web), and `grapevine ui`,
// which opens it in the browser.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/store"
	"github.com/grapevine-mesh/grapevine/internal/web"
)

// uiOptions are up's flags for the web UI.
type uiOptions struct {
	addr   string // loopback address; "" for no UI
	lan    string // TLS address for other devices; "" for none
	locked bool   // start locked: the passphrase is typed in the browser
	url    string // set once listening: what to open
}

const uiDefault = "default"

func addUIFlags(f *pflag.FlagSet, o *uiOptions) {
	f.StringVar(&o.addr, "ui", uiDefault, "loopback address of the web UI (default "+web.DefaultAddr+", or a free port if taken; \"\" for none)")
	f.StringVar(&o.lan, "ui-lan", "", "also serve the web UI to other devices at this IP:PORT, over TLS with a self-signed certificate (opt-in)")
	f.BoolVar(&o.locked, "locked", false, "start locked and take the passphrase in the web UI (a device without a keyboard of its own)")
}

// startUI starts serving the web UI, locked until SetNode. It returns nil
// (and no error) when the UI is off. wait stops nothing: it returns once the
// server stopped with ctx.
func (c *cli) startUI(ctx context.Context, o *upOptions, log *slog.Logger) (srv *web.Server, wait func() error, err error) {
	if o.ui.addr == "" {
		if o.ui.locked {
			return nil, nil, errors.New("--locked takes the passphrase in the web UI: it needs --ui")
		}
		return nil, func() error { return nil }, nil
	}
	set := web.Settings{Listen: o.listen, Peers: o.peers, Discovery: !o.noDiscovery}
	addr := o.ui.addr
	if addr == uiDefault {
		addr = web.DefaultAddr
	}
	srv, err = web.New(web.Config{Addr: addr, LANAddr: o.ui.lan, Settings: set, Log: log})
	if err != nil {
		return nil, nil, err
	}
	if err = srv.Listen(); err != nil && o.ui.addr == uiDefault {
		// Another node (or program) has the usual port: any free one will do.
		srv, _ = web.New(web.Config{Addr: "127.0.0.1:0", LANAddr: o.ui.lan, Settings: set, Log: log})
		err = srv.Listen()
	}
	if err != nil {
		return nil, nil, err
	}
	o.ui.url = srv.URL()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	return srv, func() error { return <-done }, nil
}

// unlockViaUI waits for the passphrase typed into the web UI and opens the
// home with it.
func (c *cli) unlockViaUI(ctx context.Context, srv *web.Server, home string) (*node.Node, error) {
	if !store.Exists(home) {
		return nil, fmt.Errorf("no grapevine identity in %s: run `grapevine init --name NAME` before starting locked", home)
	}
	opened := make(chan *node.Node, 1)
	srv.SetUnlocker(func(_ context.Context, pass []byte) error {
		n, err := node.Open(home, pass, node.Options{})
		if err != nil {
			return fmt.Errorf("failed to unlock: %w", err)
		}
		opened <- n
		return nil
	})
	fmt.Fprintf(c.stdout, "The node is locked. Open the web UI and enter the passphrase:\n%s\n", srv.URL())
	if lan := srv.LANURL(); lan != "" {
		fmt.Fprintf(c.stdout, "From another device: %s\n", lan)
	}
	select {
	case n := <-opened:
		return n, nil
	case <-ctx.Done():
		return nil, errors.New("stopped before the node was unlocked")
	}
}

func (c *cli) uiCmd() *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "ui [--print]",
		Short: "Open the web UI of your running node in the browser",
		Long: `Open the web UI that the running node (grapevine up) serves on loopback. The
link carries a secret that signs this browser in; it works until the node
stops. With --print, only print it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.running(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			ui, err := cl.UI(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(c.stdout, ui.URL)
			if ui.LANURL != "" {
				fmt.Fprintf(c.stdout, "From another device: %s\n", ui.LANURL)
			}
			if printOnly {
				return nil
			}
			if err := openBrowser(ui.URL); err != nil {
				fmt.Fprintf(c.stderr, "Could not start a browser (%v): open the link above.\n", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the link, do not start a browser")
	return cmd
}

// openBrowser hands the URL to the desktop's opener.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", strings.Fields(cmd.String())[0], err)
	}
	go cmd.Wait()
	return nil
}

// serveUI tells the UI and the API what they serve, once the node runs.
func serveUI(srv *web.Server, a *api.Server, n *node.Node, m api.Mesh) {
	if srv == nil {
		return
	}
	a.SetUI(api.UI{URL: srv.URL(), LANURL: srv.LANURL()})
	srv.SetNode(n, m)
}
