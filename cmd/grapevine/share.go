package main

// grapevine share: hand the app itself on. Releases verified against the
// release key wait on a shelf in the home (internal/share); --http serves
// them with a download page to anyone on the same network, with any browser.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/release"
	"github.com/grapevine-mesh/grapevine/internal/share"
)

// shelfDir is where in the home the verified releases are kept (the shelf);
// wipe removes it with the store.
const shelfDir = "releases"

type shareOptions struct {
	add, sig, keyPath string
	list, asJSON      bool
	http, urlFile     string
	offer, offers     bool
}

func (c *cli) shareCmd() *cobra.Command {
	var o shareOptions
	cmd := &cobra.Command{
		Use:   "share [--offer] [NAME...] | --offers | --add FILE | --list | --http ADDR",
		Short: "Hand Grapevine itself on: offer verified releases over the mesh, serve them with a download page",
		Long: `During a shutdown the app stores are out of reach: Grapevine travels from
device to device instead. share keeps release files — each verified against
Grapevine's release key, with its signature — on a shelf in your home
(HOME/releases), offers them to your neighbours over the mesh, and serves
them to people who do not have Grapevine yet.

  (no flag), --offer [NAME...]
                 offer the shelf's releases (or those named) over the mesh:
                 each file goes out as chunks anyone may carry, announced in
                 the public channel #grapevine-releases with its signature.
                 Neighbours that fetch releases (grapevine settings set
                 fetch-releases=mine) verify it against the release key
                 before it goes on their shelf, and offer it on. Files over
                 your file limit are not offered (settings file-limit)
  --offers       list the releases offered by and to this node: fetching (how
                 far), on the shelf, or REFUSED and why
  --add FILE     verify FILE against FILE.minisig (or --sig) and put both on
                 the shelf; a file that does not verify is refused
  --list         verify the shelf and list what it offers
  --http ADDR    serve a download page on ADDR (e.g. 0.0.0.0:8080 on your
                 hotspot) until Ctrl-C: the file for the visitor's platform
                 first, every file with its signature and SHA-256, how to
                 check them, and a QR code of the page for the next person

This grapevine's own binary goes on the shelf too when its signature sits
beside it (a release you downloaded with its .minisig). The page says nothing
about you or your node; an offer over the mesh is a public post, readable by
anyone, signed by a pseudonym of yours in that channel.

The mesh trusts only the release key this grapevine carries: --pubkey is
for --add, --list and --http, never for offers.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, set := range []bool{o.add != "", o.list, o.http != "", o.offers} {
				if set {
					n++
				}
			}
			switch {
			case n > 1 || n == 1 && o.offer:
				return errors.New("give one of --offer, --offers, --add FILE, --list or --http ADDR")
			case n == 1 && len(args) > 0:
				return errors.New("names are for --offer: the files of the shelf to offer")
			case n == 0 || o.offers:
				if o.keyPath != "" {
					return errors.New("--pubkey is for --add, --list and --http: the mesh trusts only the release key this grapevine carries")
				}
				if o.offers {
					return c.listOffers(cmd.Context(), o.asJSON)
				}
				return c.offerReleases(cmd.Context(), args, o.asJSON)
			}
			shelf, err := c.openShelf(o.keyPath)
			if err != nil {
				return err
			}
			switch {
			case o.add != "":
				it, err := shelf.Add(o.add, o.sig)
				if err != nil {
					return fmt.Errorf("failed to add %s: %w", safe(o.add), err)
				}
				fmt.Fprintf(c.stdout, "Added %s (%s) to %s\n", safe(it.Name), describeRelease(it), safe(shelf.Dir()))
				return nil
			case o.list:
				return c.listShelf(shelf, o.asJSON)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.serveShelf(ctx, shelf, o.http, o.urlFile)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.offer, "offer", false, "offer the shelf's releases (or those named) over the mesh (the default)")
	f.BoolVar(&o.offers, "offers", false, "list the releases offered by and to this node, and what became of each")
	f.StringVar(&o.add, "add", "", "verify a release file and put it on the shelf")
	f.StringVar(&o.sig, "sig", "", "with --add: the signature file (default FILE.minisig)")
	f.BoolVar(&o.list, "list", false, "verify the shelf and list what it offers")
	f.BoolVar(&o.asJSON, "json", false, "with --list: print [{name, version, platform, commit, size, sha256}] as JSON; with --offer and --offers: the releases' status")
	f.StringVar(&o.http, "http", "", "serve the download page on this address until Ctrl-C")
	f.StringVar(&o.urlFile, "url-file", "", "with --http: write the page's address to this file once serving (for scripts)")
	f.StringVar(&o.keyPath, "pubkey", "", "with --add, --list, --http: verify against this minisign public key instead of the project's")
	return cmd
}

// openShelf opens HOME/releases and puts this binary on it when its
// signature sits beside it and it is not there yet.
func (c *cli) openShelf(keyPath string) (*share.Shelf, error) {
	key, err := releaseKey(keyPath)
	if err != nil {
		return nil, err
	}
	home, err := c.homeDir()
	if err != nil {
		return nil, err
	}
	shelf, err := share.Open(filepath.Join(home, shelfDir), key)
	if err != nil {
		return nil, err
	}
	if self, err := os.Executable(); err == nil {
		if _, err := os.Stat(self + release.SigSuffix); err == nil {
			if it, err := shelf.Add(self, ""); err != nil {
				fmt.Fprintf(c.stderr, "This grapevine is not offered: %v\n", err)
			} else {
				fmt.Fprintf(c.stderr, "This grapevine is on the shelf: %s (%s)\n", safe(it.Name), describeRelease(it))
			}
		}
	}
	return shelf, nil
}

func describeRelease(it share.Item) string {
	s := fmt.Sprintf("%d bytes", it.Size)
	if it.Version != "" {
		s = it.Version + ", " + s
	}
	if it.Platform != "" {
		s = it.Platform + ", " + s
	}
	return s
}

// scanShelf verifies the shelf and reports each file it refuses.
func (c *cli) scanShelf(shelf *share.Shelf) []share.Item {
	items, problems := shelf.Scan()
	for _, p := range problems {
		fmt.Fprintf(c.stderr, "Not offered: %s\n", safe(p.Error()))
	}
	return items
}

func (c *cli) listShelf(shelf *share.Shelf, asJSON bool) error {
	items := c.scanShelf(shelf)
	if asJSON {
		if items == nil {
			items = []share.Item{}
		}
		return c.printJSON(items)
	}
	if len(items) == 0 {
		fmt.Fprintf(c.stdout, "The shelf %s has no verified release. Add one with grapevine share --add FILE.\n", safe(shelf.Dir()))
		return nil
	}
	for _, it := range items {
		fmt.Fprintf(c.stdout, "%s  %s  sha256 %s\n", safe(it.Name), describeRelease(it), it.SHA256)
	}
	return nil
}

// serveShelf serves the download page on addr until ctx ends.
func (c *cli) serveShelf(ctx context.Context, shelf *share.Shelf, addr, urlFile string) error {
	items := c.scanShelf(shelf)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", safe(addr), err)
	}
	srv := &http.Server{Handler: share.NewPage(shelf, items), ReadHeaderTimeout: 10 * time.Second}
	urls := pageURLs(ln.Addr().(*net.TCPAddr))
	fmt.Fprintf(c.stdout, "Offering %d verified files. Open this on the other device, or scan the code:\n", len(items))
	for _, u := range urls {
		fmt.Fprintf(c.stdout, "  %s\n", u)
	}
	if len(urls) > 0 {
		if err := writeQRText(c.stdout, urls[0]); err != nil {
			fmt.Fprintf(c.stderr, "%v\n", err)
		}
	}
	if urlFile != "" && len(urls) > 0 {
		if err := os.WriteFile(urlFile, []byte(urls[0]+"\n"), 0o600); err != nil {
			ln.Close()
			return fmt.Errorf("failed to write --url-file: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	case err := <-errc:
		return fmt.Errorf("failed to serve the download page: %w", err)
	}
}

// pageURLs lists the page's addresses: the one listened on, or for an
// unspecified address every address of this machine's interfaces that are
// up, loopback last (it only reaches this device).
func pageURLs(a *net.TCPAddr) []string {
	port := fmt.Sprint(a.Port)
	if !a.IP.IsUnspecified() {
		return []string{"http://" + net.JoinHostPort(a.IP.String(), port) + "/"}
	}
	v4only := a.IP.To4() != nil // 0.0.0.0 rather than ::
	var out, loop []string
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || v4only && ipn.IP.To4() == nil {
				continue
			}
			u := "http://" + net.JoinHostPort(ipn.IP.String(), port) + "/"
			if ipn.IP.IsLoopback() {
				loop = append(loop, u)
			} else {
				out = append(out, u)
			}
		}
	}
	return append(out, loop...)
}
