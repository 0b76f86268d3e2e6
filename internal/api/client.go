package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// requestTimeout bounds one request, as generously as the server's write
// timeout: importing a large bundle takes a while.
const requestTimeout = writeTimeout

// Client talks to the node running in a home. Its methods mirror the node's
// (see Core) and return the same types, so callers print the same either
// way. Failed requests return an *Error carrying the node's message.
type Client struct {
	socket string
	tr     *http.Transport
	hc     *http.Client
}

// Dial connects to the node running in home. When none answers (no socket,
// or a stale one), the error wraps ErrNoNode and the caller may open the
// store itself.
//
// Before it talks to the socket, Dial checks that it belongs to this user,
// and (on Linux) that the process serving it runs as this user: otherwise
// someone else could pose as the node and read what is sent to it.
func Dial(home string) (*Client, error) {
	path := SocketPath(home)
	dial := func(ctx context.Context) (net.Conn, error) {
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s is not a socket: move it away", path)
		}
		if err := checkOwner(path, fi); err != nil {
			return nil, err
		}
		d := net.Dialer{Timeout: probeTimeout}
		conn, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		if err := checkPeer(conn); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	conn, err := dial(context.Background())
	if err != nil {
		if noNode(err, path) {
			return nil, fmt.Errorf("%w in %s", ErrNoNode, home)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) || errors.As(err, new(*net.OpError)) {
			return nil, fmt.Errorf("failed to reach the node at %s: %w", path, err)
		}
		return nil, err
	}
	conn.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx)
		},
		MaxIdleConns:       2,
		IdleConnTimeout:    idleTimeout / 2,
		DisableCompression: true,
	}
	return &Client{socket: path, tr: tr, hc: &http.Client{Transport: tr, Timeout: requestTimeout}}, nil
}

// Close releases the client's idle connection.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Error is a request the node refused or failed. Its text is the node's own
// message, so it reads as if the store had been opened in-process.
type Error struct {
	Status  int    // HTTP status
	Code    string // one of the Code constants
	Message string
	Reason  string // for an error the caller caused: one of the node.Reason constants
	Contact string // the contact it is about, if any
	Field   string // the request's field refused, if one was
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is hold for node.ErrNoContact, node.ErrInvalid,
// node.ErrConflict, node.ErrExpired and fs.ErrExist as it does in-process.
func (e *Error) Is(target error) bool {
	switch target {
	case node.ErrNoContact:
		return e.Code == CodeNoContact
	case node.ErrInvalid:
		return e.Code == CodeBadRequest && e.Reason != ""
	case node.ErrConflict:
		return e.Code == CodeConflict
	case node.ErrExpired:
		return e.Code == CodeExpired
	case fs.ErrExist:
		return e.Code == CodeExists
	}
	return false
}

// WaitReady waits while the node answers that it is starting (its store is
// not open yet), polling a few times a second, until it answers, ctx ends,
// or a request fails otherwise. starting is called once if it has to wait.
func (c *Client) WaitReady(ctx context.Context, starting func()) error {
	told := false
	for {
		_, err := c.Status(ctx)
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != CodeStarting {
			return err
		}
		if !told && starting != nil {
			starting()
			told = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node did not finish starting: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Self returns the name, fingerprint and current invite link.
func (c *Client) Self(ctx context.Context) (node.Self, error) {
	var v node.Self
	return v, c.do(ctx, http.MethodGet, "/v1/self", nil, nil, &v)
}

// Invite returns the current invite.
func (c *Client) Invite(ctx context.Context) (*keys.Invite, error) {
	var v Invite
	if err := c.do(ctx, http.MethodGet, "/v1/invite", nil, nil, &v); err != nil {
		return nil, err
	}
	inv, err := keys.ParseLink(v.Link)
	if err != nil {
		return nil, fmt.Errorf("the node sent a bad invite: %w", err)
	}
	return inv, nil
}

// Contacts lists contacts sorted by name.
func (c *Client) Contacts(ctx context.Context) ([]node.Contact, error) {
	var v []node.Contact
	return v, c.do(ctx, http.MethodGet, "/v1/contacts", nil, nil, &v)
}

// AddContact adds the person behind an invite link; name may be empty.
func (c *Client) AddContact(ctx context.Context, link, name string) (node.Contact, error) {
	var v node.Contact
	return v, c.do(ctx, http.MethodPost, "/v1/contacts", nil, AddContactRequest{Link: link, Name: name}, &v)
}

// Accept answers a contact request.
func (c *Client) Accept(ctx context.Context, ref string) (node.Contact, error) {
	var v node.Contact
	return v, c.do(ctx, http.MethodPost, "/v1/contacts/accept", nil, ContactRequest{Contact: ref}, &v)
}

// Reject refuses a contact request and ignores that identity from now on.
func (c *Client) Reject(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodPost, "/v1/contacts/reject", nil, ContactRequest{Contact: ref}, nil)
}

// Remove forgets a contact, its keys and its messages.
func (c *Client) Remove(ctx context.Context, ref string) (node.Contact, error) {
	var v node.Contact
	return v, c.do(ctx, http.MethodPost, "/v1/contacts/remove", nil, ContactRequest{Contact: ref}, &v)
}

// Rename gives a contact another local name.
func (c *Client) Rename(ctx context.Context, ref, name string) (node.Contact, error) {
	var v node.Contact
	return v, c.do(ctx, http.MethodPost, "/v1/contacts/rename", nil, RenameRequest{Contact: ref, Name: name}, &v)
}

// Rekey starts new keys with a contact (or sends a pending request again).
func (c *Client) Rekey(ctx context.Context, ref string) (node.Contact, error) {
	var v node.Contact
	return v, c.do(ctx, http.MethodPost, "/v1/contacts/rekey", nil, ContactRequest{Contact: ref}, &v)
}

// TrustClock accepts the device's clock as it reads now.
func (c *Client) TrustClock(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/clock/trust", nil, struct{}{}, nil)
}

// SafetyNumber returns the safety number shared with a contact.
func (c *Client) SafetyNumber(ctx context.Context, ref string) (node.Contact, string, error) {
	var v SafetyNumber
	err := c.do(ctx, http.MethodGet, "/v1/contacts/verify", url.Values{"contact": {ref}}, nil, &v)
	return v.Contact, v.SafetyNumber, err
}

// Send writes text to a contact; the node passes it on to its neighbours.
func (c *Client) Send(ctx context.Context, ref, text string) (node.Message, error) {
	var v node.Message
	if !utf8.ValidString(text) { // JSON would replace the bad bytes
		return v, errors.New("the message is not valid UTF-8")
	}
	return v, c.do(ctx, http.MethodPost, "/v1/send", nil, SendRequest{To: ref, Text: text}, &v)
}

// Messages lists messages, oldest first, with one contact (ref) or all ("").
func (c *Client) Messages(ctx context.Context, ref string) ([]node.Message, error) {
	var q url.Values
	if ref != "" {
		q = url.Values{"contact": {ref}}
	}
	var v []node.Message
	return v, c.do(ctx, http.MethodGet, "/v1/messages", q, nil, &v)
}

// Envelopes lists every envelope the node holds.
func (c *Client) Envelopes(ctx context.Context) ([]node.EnvelopeInfo, error) {
	var v []node.EnvelopeInfo
	return v, c.do(ctx, http.MethodGet, "/v1/envelopes", nil, nil, &v)
}

// ExportFile has the node write a bundle file at path (relative paths are
// taken from the caller's working directory): see node.ExportFile.
func (c *Client) ExportFile(ctx context.Context, path string, o node.ExportOptions) (node.ExportResult, error) {
	var v node.ExportResult
	abs, err := filepath.Abs(path)
	if err != nil {
		return v, err
	}
	req := ExportRequest{Path: abs, Replace: o.Replace}
	if o.Progress != nil {
		return v, c.streamed(ctx, "/v1/export", req, o.Progress, &v)
	}
	return v, c.do(ctx, http.MethodPost, "/v1/export", nil, req, &v)
}

// ImportFile has the node take in the bundle file at path (relative paths
// are taken from the caller's working directory). Cancelling ctx stops the
// import where it is: see node.ImportFile.
func (c *Client) ImportFile(ctx context.Context, path string) (node.ImportReport, error) {
	return c.ImportFileWith(ctx, path, node.ImportOptions{})
}

// ImportFileWith is ImportFile, reporting the node's progress as o asks
// (progress.go).
func (c *Client) ImportFileWith(ctx context.Context, path string, o node.ImportOptions) (node.ImportReport, error) {
	var v node.ImportReport
	abs, err := filepath.Abs(path)
	if err != nil {
		return v, err
	}
	if o.Progress != nil {
		return v, c.streamed(ctx, "/v1/import", PathRequest{Path: abs}, o.Progress, &v)
	}
	return v, c.do(ctx, http.MethodPost, "/v1/import", nil, PathRequest{Path: abs}, &v)
}

// Stats counts what the node holds.
func (c *Client) Stats(ctx context.Context) (node.Stats, error) {
	st, err := c.Status(ctx)
	return st.Stats, err
}

// Status returns the running node's state.
func (c *Client) Status(ctx context.Context) (mesh.Status, error) {
	var v mesh.Status
	return v, c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &v)
}

// Peers lists the neighbours the node is linked to.
func (c *Client) Peers(ctx context.Context) ([]mesh.PeerInfo, error) {
	var v []mesh.PeerInfo
	return v, c.do(ctx, http.MethodGet, "/v1/peers", nil, nil, &v)
}

// maxResponse bounds what is read of a response: message lists can be long.
const maxResponse = 256 << 20

// do sends one request (in, if not nil, as JSON) and decodes the response
// into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := url.URL{Scheme: "http", Host: "grapevine", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("failed to reach the node at %s: %w", c.socket, unwrapURL(err))
	}
	defer resp.Body.Close()
	r := io.LimitReader(resp.Body, maxResponse)
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, r)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(r).Decode(out); err != nil {
		return fmt.Errorf("failed to read the node's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// responseError reads the JSON error of a response that is not 200 OK from
// r, its body.
func responseError(resp *http.Response, r io.Reader) error {
	var e ErrorResponse
	if err := json.NewDecoder(r).Decode(&e); err != nil || e.Error == "" {
		return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: "the node answered " + resp.Status}
	}
	return &Error{Status: resp.StatusCode, Code: e.Code, Message: e.Error, Reason: e.Reason, Contact: e.Contact, Field: e.Field}
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the made-up URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
