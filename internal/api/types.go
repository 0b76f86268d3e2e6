package api

import (
	"time"

	"github.com/grapevine-mesh/grapevine/internal/keys"
	"github.com/grapevine-mesh/grapevine/internal/mesh"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Core is what the CLI's core commands use of a node. Both an in-process
// *node.Node (the store opened by the command) and a *Client (a running
// node) implement it, with the same results.
type Core interface {
	Self() (node.Self, error)
	Invite() (*keys.Invite, error)
	Contacts() ([]node.Contact, error)
	AddContact(link, name string) (node.Contact, error)
	Accept(ref string) (node.Contact, error)
	Reject(ref string) error
	Remove(ref string) (node.Contact, error)
	Rename(ref, name string) (node.Contact, error)
	Rekey(ref string) (node.Contact, error)
	TrustClock() error
	SafetyNumber(ref string) (node.Contact, string, error)
	Send(ref, text string) (node.Message, error)
	Messages(ref string) ([]node.Message, error)
	Envelopes() ([]node.EnvelopeInfo, error)
	Export(path string) (int, error)
	Import(path string) (node.ImportReport, error)
	Stats() (node.Stats, error)
	Close() error
}

var (
	_ Core = (*node.Node)(nil)
	_ Core = (*Client)(nil)
)

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
	// PathRequest is the body of POST /v1/export and /v1/import.
	PathRequest struct {
		Path string `json:"path"` // absolute: the node runs elsewhere
	}
	// ExportResponse is the response of POST /v1/export.
	ExportResponse struct {
		Path  string `json:"path"`
		Count int    `json:"count"` // envelopes written
	}
	// ErrorResponse is the body of every failed request.
	ErrorResponse struct {
		Error string `json:"error"`
		Code  string `json:"code"` // one of the Code constants
	}
)

// Error codes, alongside the HTTP status of a failed request.
const (
	CodeBadRequest = "bad_request" // 400: malformed JSON, missing or invalid field
	CodeNoContact  = "no_contact"  // 404: node.ErrNoContact
	CodeNotFound   = "not_found"   // 404: no such endpoint
	CodeMethod     = "method"      // 405: wrong method for the endpoint
	CodeTooLarge   = "too_large"   // 413: body over MaxBody
	CodeInternal   = "internal"    // 500: anything else the node refused or failed
)

// MaxBody bounds a request body; a text is at most node.MaxText (16 KiB).
const MaxBody = 1 << 20
