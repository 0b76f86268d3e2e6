//go:build linux

package netns

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/bundle"
	"github.com/grapevine-mesh/grapevine/internal/envelope"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Files across the mesh (SPEC §16.10): a file sent A → C over a relay whose
// link to C goes down and up mid-transfer, and a file C completes from two
// carriers that each hold half of it.

// randomFile writes size random bytes to a new file and returns its path and
// SHA-256.
func randomFile(t *testing.T, size int) (string, [sha256.Size]byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "file-"+randHex(4)+".bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, sha256.Sum256(data)
}

// fileMessage returns the message whose caption is caption, if it is there
// and carries a file.
func (n *gnode) fileMessage(caption string) (node.Message, bool) {
	n.t.Helper()
	m, ok := n.message(caption)
	return m, ok && m.Attachment != nil
}

// saveFile saves the file of a message sent to the node and checks that it
// is byte-identical to the one sent.
func (n *gnode) saveFile(m node.Message, want [sha256.Size]byte) {
	n.t.Helper()
	dest := filepath.Join(n.t.TempDir(), "saved-"+randHex(4))
	n.cli("save", m.ID, dest)
	data, err := os.ReadFile(dest)
	if err != nil {
		n.t.Fatal(err)
	}
	if got := sha256.Sum256(data); got != want {
		n.t.Fatalf("%s saved %d bytes whose SHA-256 is %x, want %x (the file sent)", n.label, len(data), got, want)
	}
}

// progress follows how many chunks of a file a node holds, failing the test
// if the count ever goes backwards.
type progress struct {
	n       *gnode
	caption string
	have    int
	m       node.Message
}

// poll reads the file's progress now.
func (p *progress) poll() node.Attachment {
	p.n.t.Helper()
	m, ok := p.n.fileMessage(p.caption)
	if !ok {
		return node.Attachment{}
	}
	a := *m.Attachment
	if a.Have < p.have {
		p.n.t.Fatalf("%s: the file went back from %d to %d of %d chunks", p.n.label, p.have, a.Have, a.Chunks)
	}
	p.have, p.m = a.Have, m
	return a
}

// linkCounts sums what a node's log says its closed links to host carried,
// in envelopes sent and received (mesh logs them as each link closes).
func linkCounts(t *testing.T, n *gnode, host string) (sent, received, links int) {
	t.Helper()
	re := regexp.MustCompile(`msg="link closed" addr=` + regexp.QuoteMeta(host) + `:\d+ envelopes_sent=(\d+) envelopes_received=(\d+)`)
	for _, m := range re.FindAllStringSubmatch(n.logText(), -1) {
		s, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[2])
		sent, received, links = sent+s, received+r, links+1
	}
	return sent, received, links
}

// cut takes the veth pair down and has both namespaces' kernels destroy
// the TCP connections across it, as a phone's does when its Wi-Fi goes
// (Android destroys the sockets of a network that left; `ss -K`), and waits
// until both nodes see their link gone. Without destroying the sockets,
// TCP would sit out a short outage and neither node would notice it.
func cut(t *testing.T, a *netns, ifA, addrA string, na *gnode, b *netns, ifB, addrB string, nb *gnode) {
	t.Helper()
	ipCmd(t, "-n", a.name, "link", "set", ifA, "down")
	ipCmd(t, "-n", b.name, "link", "set", ifB, "down")
	for _, k := range []struct {
		ns   *netns
		peer string
	}{{a, addrB}, {b, addrA}} {
		if out, err := exec.Command("ip", "netns", "exec", k.ns.name, "ss", "-K", "-t", "dst", k.peer).CombinedOutput(); err != nil {
			t.Fatalf("ss -K in %s: %v\n%s", k.ns.name, err, out)
		}
	}
	for _, s := range []struct {
		n    *gnode
		peer string
	}{{na, addrB}, {nb, addrA}} {
		// ss -K does nothing on a kernel without CONFIG_INET_DIAG_DESTROY.
		eventually(t, waitLong, s.n.label+" to see its link to "+s.peer+" gone (destroyed by ss -K)", func() (bool, string) {
			ps := s.n.peers()
			for _, p := range ps {
				if strings.HasPrefix(p.Addr, s.peer+":") {
					return false, fmt.Sprintf("peers: %+v", ps)
				}
			}
			return true, ""
		})
	}
}

// flap cuts the link (cut) and brings it up again.
func flap(t *testing.T, a *netns, ifA, addrA string, na *gnode, b *netns, ifB, addrB string, nb *gnode) {
	t.Helper()
	cut(t, a, ifA, addrA, na, b, ifB, addrB, nb)
	ipCmd(t, "-n", a.name, "link", "set", ifA, "up")
	ipCmd(t, "-n", b.name, "link", "set", ifB, "up")
}

// TestFileSurvivesAFlappingLink: a 20 MB file goes from A to C over A–B–C,
// where B is only a relay. Three times while C holds some but not all of
// the chunks, the B–C link goes down (its connection destroyed on both
// sides) and up again. The file arrives byte-identical, C's count of
// chunks never goes backwards, and B sends C each chunk about once: a new
// link takes up where the last one stopped, it does not start from zero.
func TestFileSurvivesAFlappingLink(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	const (
		size  = 20_000_000
		flaps = 3
	)
	nsA, nsB, nsC := newNetns(t), newNetns(t), newNetns(t)
	veth(t, nsA, "169.254.1.2/24", nsB, "169.254.1.1/24")
	ifBC, ifCB := veth(t, nsB, "169.254.2.1/24", nsC, "169.254.2.2/24")
	a, b, c := newNode(t, nsA, "A"), newNode(t, nsB, "B"), newNode(t, nsC, "C")
	// 20 MB is over the default file limit (16 MiB), for the sender and the
	// receiver; B carries chunks within its chunk quota, as for everyone.
	b.start("--no-discovery")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342", "--file-limit", "32MiB")
	c.start("--no-discovery", "--peer", "169.254.2.1:7342", "--file-limit", "32MiB")
	b.waitPeers(2)
	a.add(c)
	c.waitContact(a.name, node.StateRequest)
	c.cli("contacts", "accept", a.name)
	a.waitContact(c.name, node.StateActive)

	// B → C at 40 Mbit/s: some 4 s for the whole file, so that every flap
	// falls mid-transfer (a token bucket rather than netem, which not every
	// kernel has). It stays on the interface across the flaps.
	tc(t, nsB, "qdisc", "add", "dev", ifBC, "root", "tbf", "rate", "40mbit", "burst", "64kb", "latency", "100ms")
	path, sum := randomFile(t, size)
	caption := "the whole map " + randHex(8)
	a.cli("send", c.name, "--file", path, caption)

	p := &progress{n: c, caption: caption}
	var chunks int
	for i := range flaps {
		// Wait for C to make progress since the last flap: at least another
		// sixth of the file, and not all of it.
		eventually(t, time.Minute, fmt.Sprintf("C to hold %d/6 of the file before flap %d", i+1, i+1), func() (bool, string) {
			att := p.poll()
			chunks = att.Chunks
			if att.Complete || chunks > 0 && att.Have == chunks {
				t.Fatalf("C holds the whole file before flap %d: the link is too fast", i+1)
			}
			return chunks > 0 && att.Have >= (i+1)*chunks/6, fmt.Sprintf("C: %+v", att)
		})
		t.Logf("flap %d with C holding %d of %d chunks", i+1, p.have, chunks)
		flap(t, nsB, ifBC, "169.254.2.1", b, nsC, ifCB, "169.254.2.2", c)
	}
	eventually(t, 2*time.Minute, "C to hold the whole file", func() (bool, string) {
		att := p.poll()
		return att.Complete && att.Have == att.Chunks, fmt.Sprintf("C: %+v", att)
	})
	if att := p.m.Attachment; att.Sources != 1 {
		t.Errorf("C got the file from %d carriers, want 1 (B, over every link): %+v", att.Sources, att)
	}
	c.saveFile(p.m, sum)

	// What B sent C and what C received from B, over all their links,
	// counted as each closed. C received every chunk once, besides the
	// request, the file's message and a receipt: no chunk it held was
	// asked for or sent again. B sent no more than that and what each
	// destroyed connection lost in the air (the token bucket's queue and
	// the socket buffers: at most 2 MiB, 64 chunks, a flap).
	b.stop()
	c.stop()
	sent, _, links := linkCounts(t, b, "169.254.2.2")
	_, received, cLinks := linkCounts(t, c, "169.254.2.1")
	t.Logf("B sent C %d envelopes, C received %d, over %d links, for a file of %d chunks", sent, received, links, chunks)
	if links < flaps+1 || cLinks < flaps+1 {
		t.Errorf("B's log shows %d links to C, C's %d to B, want %d (one per flap, and the last)", links, cLinks, flaps+1)
	}
	const others = 8
	if received < chunks || received > chunks+others {
		t.Errorf("C received %d envelopes from B for a file of %d chunks: chunks it held came again", received, chunks)
	}
	if slack := others + flaps*64; sent > chunks+slack {
		t.Errorf("B sent C %d envelopes for a file of %d chunks, over %d more: the transfer started again", sent, chunks, slack)
	}
}

// splitBundle reads a bundle and writes two: each holds every envelope that
// is not a chunk (the file's message among them), and half of the chunks,
// the first half to one and the rest to the other. It returns how many
// chunks went to each.
func splitBundle(t *testing.T, path, half1, half2 string) (n1, n2 int) {
	t.Helper()
	var others, chunks [][]byte
	_, err := bundle.ReadFile(path, func(raw []byte) error {
		e, err := envelope.Parse(raw)
		if err != nil {
			return err
		}
		if e.Kind == envelope.KindChunk {
			chunks = append(chunks, bytes.Clone(raw))
		} else {
			others = append(others, bytes.Clone(raw))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the bundle: %v", err)
	}
	if len(chunks) < 2 {
		t.Fatalf("the bundle holds %d chunks", len(chunks))
	}
	h := len(chunks) / 2
	writeBundle(t, half1, append(slices.Clone(others), chunks[:h]...))
	writeBundle(t, half2, append(slices.Clone(others), chunks[h:]...))
	return h, len(chunks) - h
}

// TestFileFromTwoCarriers: A sends C a file while linked to nobody, and two
// carriers, B1 and B2, each take away half of its chunks (and the file's
// message) on bundles made from A's export (as two people would who each
// copied part of it). C meets B1 and holds half the
// file, from one carrier; then B2, over a slow link, and the progress shows
// two carriers; the file completes, and saves byte-identical.
func TestFileFromTwoCarriers(t *testing.T) {
	requireNetns(t)
	t.Parallel()
	const size = 3_000_000
	nsA, nsC, nsB1, nsB2 := newNetns(t), newNetns(t), newNetns(t), newNetns(t)
	ifAC, ifCA := veth(t, nsA, "169.254.1.2/24", nsC, "169.254.1.1/24")
	veth(t, nsB1, "169.254.2.2/24", nsC, "169.254.2.1/24")
	ifB2, _ := veth(t, nsB2, "169.254.3.2/24", nsC, "169.254.3.1/24")
	a, c := newNode(t, nsA, "A"), newNode(t, nsC, "C")
	b1, b2 := newNode(t, nsB1, "B1"), newNode(t, nsB2, "B2")

	// A and C become contacts over a link of their own, which then goes
	// down for good.
	c.start("--no-discovery")
	a.start("--no-discovery", "--peer", "169.254.1.1:7342")
	a.add(c)
	c.waitContact(a.name, node.StateRequest)
	c.cli("contacts", "accept", a.name)
	a.waitContact(c.name, node.StateActive)
	cut(t, nsA, ifAC, "169.254.1.2", a, nsC, ifCA, "169.254.1.1", c)

	// Cut off, A sends the file and exports what it holds; the carriers
	// take half each.
	path, sum := randomFile(t, size)
	caption := "two halves " + randHex(8)
	a.cli("send", c.name, "--file", path, caption)
	dir := t.TempDir()
	all, half1, half2 := filepath.Join(dir, "all.gvb"), filepath.Join(dir, "half1.gvb"), filepath.Join(dir, "half2.gvb")
	a.cli("export", all)
	n1, n2 := splitBundle(t, all, half1, half2)

	// C meets B1: half the file, from one carrier.
	b1.start("--no-discovery", "--peer", "169.254.2.1:7342")
	b1.cli("import", half1)
	p := &progress{n: c, caption: caption}
	eventually(t, waitLong, "C to hold B1's half", func() (bool, string) {
		att := p.poll()
		return att.Chunks == n1+n2 && att.Have == n1, fmt.Sprintf("C: %+v, B1 carries %d chunks", att, n1)
	})
	half := fmt.Sprintf("%d of %d chunks from 1 carrier", n1, n1+n2)
	if out := c.cli("messages"); !strings.Contains(out, half) {
		t.Errorf("C's messages do not say %q:\n%s", half, out)
	}

	// Then B2, at 4 Mbit/s (some 3 s for its half), so that the progress
	// can be seen half-way.
	tc(t, nsB2, "qdisc", "add", "dev", ifB2, "root", "tbf", "rate", "4mbit", "burst", "32kb", "latency", "200ms")
	b2.start("--no-discovery", "--peer", "169.254.3.1:7342")
	b2.cli("import", half2)
	both := regexp.MustCompile(`(\d+) of (\d+) chunks from 2 carriers`)
	eventually(t, waitLong, "C's messages to show chunks from two carriers", func() (bool, string) {
		out := c.cli("messages")
		m := both.FindStringSubmatch(out)
		if m == nil {
			p.poll()
			return false, out
		}
		k, _ := strconv.Atoi(m[1])
		if k <= n1 || m[2] != strconv.Itoa(n1+n2) {
			t.Errorf("C's messages say %q, with %d chunks from B1 of %d", m[0], n1, n1+n2)
		}
		return true, ""
	})
	eventually(t, waitLong, "C to hold the whole file", func() (bool, string) {
		att := p.poll()
		return att.Complete && att.Have == att.Chunks, fmt.Sprintf("C: %+v", att)
	})
	if att := p.m.Attachment; att.Sources != 2 || att.Chunks != n1+n2 {
		t.Errorf("C's file: %+v, want %d chunks from 2 carriers", att, n1+n2)
	}
	c.saveFile(p.m, sum)
}
