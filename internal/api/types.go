package api

import (
	"context"
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Core is what the CLI's core commands use of a node. Both Local (a
// *node.Node, the store opened by the command) and a *Client (a running
// node) implement it, with the same results. Every method takes a context:
// cancelling it (Ctrl-C) abandons a request to a running node, and stops a
// long import or export in either.
type Core interface {
	Self(ctx context.Context) (node.Self, error)
	Invite(ctx context.Context) (*keys.Invite, error)
	Contacts(ctx context.Context) ([]node.Contact, error)
	AddContact(ctx context.Context, link, name string) (node.Contact, error)
	Accept(ctx context.Context, ref string) (node.Contact, error)
	Reject(ctx context.Context, ref string) error
	Remove(ctx context.Context, ref string) (node.Contact, error)
	Rename(ctx context.Context, ref, name string) (node.Contact, error)
	Rekey(ctx context.Context, ref string) (node.Contact, error)
	TrustClock(ctx context.Context) error
	SafetyNumber(ctx context.Context, ref string) (node.Contact, string, error)
	Send(ctx context.Context, ref, text string) (node.Message, error)
	Messages(ctx context.Context, ref string) ([]node.Message, error)
	Envelopes(ctx context.Context) ([]node.EnvelopeInfo, error)
	ExportFile(ctx context.Context, path string, o node.ExportOptions) (node.ExportResult, error)
	ImportFile(ctx context.Context, path string) (node.ImportReport, error)
	ImportFileWith(ctx context.Context, path string, o node.ImportOptions) (node.ImportReport, error)
	Stats(ctx context.Context) (node.Stats, error)
	Settings(ctx context.Context) (Settings, error)
	UpdateSettings(ctx context.Context, u SettingsUpdate) (Settings, error)
	Groups   // groups.go
	Channels // channels.go
	Files    // files.go
	Releases // releases.go
	Close() error
}

var (
	_ Core = Local{}
	_ Core = (*Client)(nil)
)

// Local is a node opened in-process, as a Core. The node's quick methods
// do not look at the context beyond refusing to start once it is done;
// import and export stop when it is cancelled.
type Local struct{ N *node.Node }

func (l Local) Self(ctx context.Context) (node.Self, error) {
	if err := ctx.Err(); err != nil {
		return node.Self{}, err
	}
	return l.N.Self()
}

func (l Local) Invite(ctx context.Context) (*keys.Invite, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Invite()
}

func (l Local) Contacts(ctx context.Context) ([]node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Contacts()
}

func (l Local) AddContact(ctx context.Context, link, name string) (node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, err
	}
	return l.N.AddContact(link, name)
}

func (l Local) Accept(ctx context.Context, ref string) (node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, err
	}
	return l.N.Accept(ref)
}

func (l Local) Reject(ctx context.Context, ref string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.Reject(ref)
}

func (l Local) Remove(ctx context.Context, ref string) (node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, err
	}
	return l.N.Remove(ref)
}

func (l Local) Rename(ctx context.Context, ref, name string) (node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, err
	}
	return l.N.Rename(ref, name)
}

func (l Local) Rekey(ctx context.Context, ref string) (node.Contact, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, err
	}
	return l.N.Rekey(ref)
}

func (l Local) TrustClock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.TrustClock()
}

func (l Local) SafetyNumber(ctx context.Context, ref string) (node.Contact, string, error) {
	if err := ctx.Err(); err != nil {
		return node.Contact{}, "", err
	}
	return l.N.SafetyNumber(ref)
}

func (l Local) Send(ctx context.Context, ref, text string) (node.Message, error) {
	if err := ctx.Err(); err != nil {
		return node.Message{}, err
	}
	return l.N.Send(ref, text)
}

func (l Local) Messages(ctx context.Context, ref string) ([]node.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Messages(ref)
}

func (l Local) Envelopes(ctx context.Context) ([]node.EnvelopeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Envelopes()
}

func (l Local) ExportFile(ctx context.Context, path string, o node.ExportOptions) (node.ExportResult, error) {
	return l.N.ExportFile(ctx, path, o)
}

func (l Local) ImportFile(ctx context.Context, path string) (node.ImportReport, error) {
	return l.N.ImportFile(ctx, path)
}

func (l Local) ImportFileWith(ctx context.Context, path string, o node.ImportOptions) (node.ImportReport, error) {
	return l.N.ImportFileWith(ctx, path, o)
}

func (l Local) Stats(ctx context.Context) (node.Stats, error) {
	if err := ctx.Err(); err != nil {
		return node.Stats{}, err
	}
	return l.N.Stats()
}

func (l Local) Close() error { return l.N.Close() }

// Mesh is what the API shows of the running mesh: its neighbours and state.
type Mesh interface {
	Peers() []mesh.PeerInfo
	Status() mesh.Status
}

// Request and response bodies beyond the node's own JSON types.
type (
	// Invite is the response of GET /v1/invite.
	Invite struct {
		Link    string    `json:"link"`
		Expires time.Time `json:"expires"` // the one-time prekey's expiry
	}
	// AddContactRequest is the body of POST /v1/contacts.
	AddContactRequest struct {
		Link string `json:"link"`
		Name string `json:"name,omitempty"` // default: the name in the invite
	}
	// ContactRequest is the body of POST /v1/contacts/accept and /reject.
	ContactRequest struct {
		Contact string `json:"contact"` // name or fingerprint prefix
	}
	// RenameRequest is the body of POST /v1/contacts/rename.
	RenameRequest struct {
		Contact string `json:"contact"` // name or fingerprint prefix
		Name    string `json:"name"`    // the new name
	}
	// SafetyNumber is the response of GET /v1/contacts/verify.
	SafetyNumber struct {
		Contact      node.Contact `json:"contact"`
		SafetyNumber string       `json:"safety_number"`
	}
	// SendRequest is the body of POST /v1/send.
	SendRequest struct {
		To   string `json:"to"` // name or fingerprint prefix
		Text string `json:"text"`
	}
	// PathRequest is the body of POST /v1/import.
	PathRequest struct {
		Path string `json:"path"` // absolute: the node runs elsewhere
	}
	// ExportRequest is the body of POST /v1/export.
	ExportRequest struct {
		Path    string `json:"path"`              // absolute: a file, or a directory to write a new file into
		Replace bool   `json:"replace,omitempty"` // replace a regular file at path
	}
	// ErrorResponse is the body of every failed request.
	ErrorResponse struct {
		Error string `json:"error"`
		Code  string `json:"code"` // one of the Code constants
		// Reason and Contact say more of an error the caller caused
		// (node.Error): one of the node.Reason constants, and the contact
		// it is about.
		Reason  string `json:"reason,omitempty"`
		Contact string `json:"contact,omitempty"`
		// Field names the request's field whose value was refused
		// (PUT /v1/settings), so a form can point at it.
		Field string `json:"field,omitempty"`
	}
)

// Error codes, alongside the HTTP status of a failed request.
const (
	CodeBadRequest = "bad_request" // 400: malformed JSON, missing or invalid field, node.ErrInvalid
	CodeNoContact  = "no_contact"  // 404: node.ErrNoContact
	CodeNotFound   = "not_found"   // 404: no such endpoint
	CodeExists     = "exists"      // 409: export would replace a file (fs.ErrExist)
	CodeConflict   = "conflict"    // 409: node.ErrConflict (already a contact, a name taken, …)
	CodeExpired    = "expired"     // 410: node.ErrExpired (an invite expired)
	CodeMethod     = "method"      // 405: wrong method for the endpoint
	CodeTooLarge   = "too_large"   // 413: body over MaxBody
	CodeInternal   = "internal"    // 500: anything else the node refused or failed
	CodeStarting   = "starting"    // 503: the node is starting; try again
)

// MaxBody bounds a request body; a text is at most node.MaxText (16 KiB).
const MaxBody = 1 << 20
