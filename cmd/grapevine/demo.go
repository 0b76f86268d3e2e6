package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

func (c *cli) demoCmd() *cobra.Command {
	var nodes int
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--nodes N]",
		Short: "Watch a message hop along a line of real nodes on this machine",
		Long: `Start a small mesh of real grapevine processes on loopback, in a temporary
directory: N nodes in a line, each knowing only its neighbour (--peer), LAN
discovery off. The first adds the last as a contact, and a message travels
from one end to the other, hop by hop, and its receipt comes back. Then
everything is stopped and removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 2 || nodes > 26 {
				return errors.New("--nodes must be between 2 and 26")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return c.demo(ctx, nodes, keep)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 5, "how many nodes in the line")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary homes (for a look inside)")
	return cmd
}

var demoNames = []string{"Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
	"Ken", "Liam", "Mallory", "Nina", "Oscar", "Peggy", "Quinn", "Rupert", "Sybil", "Trent",
	"Ursula", "Victor", "Walter", "Xena", "Yara", "Zed"}

type demoNode struct {
	name string
	home string
	cmd  *exec.Cmd
	api  *api.Client
	addr string
}

func (c *cli) demo(ctx context.Context, count int, keep bool) error {
	exe, err := selfPath()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "grapevine-demo-")
	if err != nil {
		return err
	}
	var ns []*demoNode
	defer func() {
		for _, n := range ns {
			n.stop()
		}
		if keep {
			fmt.Fprintf(c.stdout, "Homes kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	pass := make([]byte, 16)
	rand.Read(pass)
	out := c.stdout
	fmt.Fprintf(out, "Starting %d grapevine nodes on loopback, in a line, each knowing only its neighbour:\n", count)
	for i := range count {
		n := &demoNode{name: demoNames[i], home: filepath.Join(dir, strings.ToLower(demoNames[i]))}
		ns = append(ns, n)
		var peer string
		if i > 0 {
			peer = ns[i-1].addr
		}
		if err := n.start(ctx, exe, hex.EncodeToString(pass), peer); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-6s listening on %s", n.name, n.addr)
		if peer != "" {
			fmt.Fprintf(out, ", knows only %s", ns[i-1].name)
		}
		fmt.Fprintln(out)
	}
	first, last := ns[0], ns[count-1]
	if err := demoContacts(ctx, out, first, last); err != nil {
		return err
	}
	return demoMessage(ctx, out, ns)
}

// selfPath finds this program's file, as it was started (so a symlinked
// multicall name keeps working).
func selfPath() (string, error) {
	if p, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

func (n *demoNode) start(ctx context.Context, exe, pass, peer string) error {
	args := []string{"--home", n.home, "up", "--name", n.name, "--listen", "127.0.0.1:0", "--no-discovery", "--quiet", "--receipt-delay", "1s"}
	if peer != "" {
		args = append(args, "--peer", peer)
	}
	if err := os.MkdirAll(n.home, 0o700); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(n.home), n.name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	n.cmd = exec.Command(exe, args...)
	n.cmd.Env = append(os.Environ(), "GRAPEVINE_PASSPHRASE="+pass)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", n.name, err)
	}
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		cl, err := api.Dial(n.home)
		if err != nil {
			return false, nil
		}
		st, err := cl.Status(ctx)
		if err != nil || len(st.Listen) == 0 {
			cl.Close()
			return false, nil
		}
		n.api, n.addr = cl, st.Listen[0]
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s did not come up (log: %s): %w", n.name, logf.Name(), err)
	}
	return nil
}

func (n *demoNode) stop() {
	if n.api != nil {
		n.api.Close()
	}
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.cmd.Process.Kill()
			<-done
		}
	}
}

// poll calls cond every 5 ms until it is true, fails, or time is up.
func poll(ctx context.Context, within time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func demoContacts(ctx context.Context, out interface{ Write([]byte) (int, error) }, first, last *demoNode) error {
	self, err := last.api.Self(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s adds %s from the invite link (as if scanning a QR code in person).\n", first.name, last.name)
	if _, err := first.api.AddContact(ctx, self.Link, ""); err != nil {
		return err
	}
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		cs, err := last.api.Contacts(ctx)
		for _, c := range cs {
			if c.Name == first.name && c.State == node.StateRequest {
				return true, err
			}
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("%s's contact request did not reach %s: %w", first.name, last.name, err)
	}
	fmt.Fprintf(out, "%s's contact request travelled down the line; %s accepts it.\n", first.name, last.name)
	if _, err := last.api.Accept(ctx, first.name); err != nil {
		return err
	}
	return poll(ctx, 30*time.Second, func() (bool, error) {
		cs, err := first.api.Contacts(ctx)
		for _, c := range cs {
			if c.Name == last.name && c.State == node.StateActive {
				return true, err
			}
		}
		return false, err
	})
}

func demoMessage(ctx context.Context, out interface{ Write([]byte) (int, error) }, ns []*demoNode) error {
	first, last := ns[0], ns[len(ns)-1]
	text := "Hello from the other end of the line!"
	m, err := first.api.Send(ctx, last.name, text)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(out, "\n%s sends %q (envelope %s…, sealed: the relays see only a random tag)\n", first.name, text, m.ID[:12])
	// Watch every relay at once: a hop takes about a millisecond, so a
	// relay may pass the envelope on (and drop it on the receipt) between
	// two looks.
	relays := ns[1 : len(ns)-1]
	seenAt := make([]time.Duration, len(relays))
	hopsLeft := make([]uint8, len(relays))
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, n := range relays {
		wg.Go(func() {
			poll(wctx, time.Minute, func() (bool, error) {
				envs, err := n.api.Envelopes(ctx)
				for _, e := range envs {
					if e.ID == m.ID {
						seenAt[i], hopsLeft[i] = time.Since(start), e.Hops
						return true, nil
					}
				}
				return false, err
			})
		})
	}
	var arrived time.Duration
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		msgs, err := last.api.Messages(ctx, first.name)
		for _, r := range msgs {
			if r.Text == text {
				arrived = time.Since(start)
				return true, nil
			}
		}
		return false, err
	})
	stopWatch()
	wg.Wait()
	for i, n := range relays {
		if seenAt[i] == 0 {
			fmt.Fprintf(out, "  %-8s hop %d: %s passed it on before we could look\n", "", i+1, n.name)
			continue
		}
		fmt.Fprintf(out, "  +%-7s hop %d: %s carries it (hops left %d)\n", ms(seenAt[i]), i+1, n.name, hopsLeft[i])
	}
	if err != nil {
		return fmt.Errorf("the message did not arrive: %w", err)
	}
	fmt.Fprintf(out, "  +%-7s %s received it: %q\n", ms(arrived), last.name, text)
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		msgs, err := first.api.Messages(ctx, last.name)
		for _, r := range msgs {
			if r.ID == m.ID && r.Status == node.StatusDelivered {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("the receipt did not come back: %w", err)
	}
	fmt.Fprintf(out, "  +%-7s %s's receipt came back: %s's message shows as delivered.\n", ms(time.Since(start)), last.name, first.name)
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		for _, n := range ns[1 : len(ns)-1] {
			envs, err := n.api.Envelopes(ctx)
			if err != nil {
				return false, err
			}
			for _, e := range envs {
				if e.ID == m.ID {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("a relay kept its copy after the receipt passed: %w", err)
	}
	fmt.Fprintf(out, "  +%-7s the receipt purged every relay's copy.\n", ms(time.Since(start)))
	fmt.Fprintln(out, "\nStopping the nodes and removing their homes.")
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
