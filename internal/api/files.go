package api

// Files sent pairwise (SPEC §16.10) through the local API: send a file,
// list the messages that carry one with how far each has come, save a file
// that has arrived. Paths are absolute: the node runs in another directory,
// and reads and writes them itself.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Files is what the CLI's file commands use of a node: both Local and
// *Client implement it (it is part of Core).
type Files interface {
	SendFile(ctx context.Context, ref, path string, o node.SendFileOptions) (node.Message, error)
	SendGroupFile(ctx context.Context, group, path string, o node.SendFileOptions) (node.RoomMessage, error)
	Attachments(ctx context.Context, ref string) ([]node.Message, error)
	SaveAttachment(ctx context.Context, messageID, path string) (*node.Attachment, error)
}

// Request bodies of the file endpoints.
type (
	// SendFileRequest is the body of POST /v1/files/send.
	SendFileRequest struct {
		To      string `json:"to"`                // name or fingerprint prefix
		Path    string `json:"path"`              // absolute
		AsFile  bool   `json:"as_file,omitempty"` // a photo as it is, not re-encoded without its metadata
		Caption string `json:"caption,omitempty"`
		Name    string `json:"name,omitempty"` // offered name; default the path's last element
	}
	// SendGroupFileRequest is the body of POST /v1/groups/files/send.
	SendGroupFileRequest struct {
		Group   string `json:"group"` // name or ID prefix
		Path    string `json:"path"`  // absolute
		AsFile  bool   `json:"as_file,omitempty"`
		Caption string `json:"caption,omitempty"`
		Name    string `json:"name,omitempty"`
	}
	// SaveRequest is the body of POST /v1/files/save.
	SaveRequest struct {
		Message string `json:"message"` // the message's ID
		Path    string `json:"path"`    // absolute; must not exist
	}
)

func (s *Server) fileRoutes() {
	s.handle("POST /v1/files/send", func(r *http.Request) (any, error) {
		req, err := decode[SendFileRequest](r)
		if err != nil {
			return nil, err
		}
		if req.To == "" {
			return nil, bad(`missing "to": a contact's name or fingerprint prefix`)
		}
		path, err := absPath(req.Path)
		if err != nil {
			return nil, err
		}
		m, err := s.n.SendFile(req.To, path, node.SendFileOptions{AsFile: req.AsFile, Caption: req.Caption, Name: req.Name})
		return m, fileError(err)
	})
	s.handle("POST /v1/groups/files/send", func(r *http.Request) (any, error) {
		req, err := decode[SendGroupFileRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Group == "" {
			return nil, bad(`missing "group": a group's name or the start of its ID`)
		}
		path, err := absPath(req.Path)
		if err != nil {
			return nil, err
		}
		m, err := s.n.SendRoomFile(req.Group, path, node.SendFileOptions{AsFile: req.AsFile, Caption: req.Caption, Name: req.Name})
		return m, fileError(roomError(err))
	})
	s.handle("GET /v1/files", func(r *http.Request) (any, error) {
		return list(attachments(s.n.Messages(r.URL.Query().Get("contact"))))
	})
	s.handle("POST /v1/files/save", func(r *http.Request) (any, error) {
		req, err := decode[SaveRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Message == "" {
			return nil, bad(`missing "message": the ID of the message that carries the file`)
		}
		path, err := absPath(req.Path)
		if err != nil {
			return nil, err
		}
		a, err := s.n.SaveAttachment(req.Message, path)
		return a, fileError(err)
	})
}

// attachments keeps the messages that carry a file.
func attachments(ms []node.Message, err error) ([]node.Message, error) {
	out := ms[:0]
	for _, m := range ms {
		if m.Attachment != nil {
			out = append(out, m)
		}
	}
	return out, err
}

// SendFile sends the file at path to a contact.
func (c *Client) SendFile(ctx context.Context, ref, path string, o node.SendFileOptions) (node.Message, error) {
	var v node.Message
	if !utf8.ValidString(o.Caption) { // JSON would replace the bad bytes
		return v, errors.New("the caption is not valid UTF-8")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return v, err
	}
	req := SendFileRequest{To: ref, Path: abs, AsFile: o.AsFile, Caption: o.Caption, Name: o.Name}
	return v, c.do(ctx, http.MethodPost, "/v1/files/send", nil, req, &v)
}

// SendGroupFile posts the file at path to a group.
func (c *Client) SendGroupFile(ctx context.Context, group, path string, o node.SendFileOptions) (node.RoomMessage, error) {
	var v node.RoomMessage
	if !utf8.ValidString(o.Caption) {
		return v, errors.New("the caption is not valid UTF-8")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return v, err
	}
	req := SendGroupFileRequest{Group: group, Path: abs, AsFile: o.AsFile, Caption: o.Caption, Name: o.Name}
	return v, c.do(ctx, http.MethodPost, "/v1/groups/files/send", nil, req, &v)
}

// Attachments lists the messages that carry a file, with one contact or all.
func (c *Client) Attachments(ctx context.Context, ref string) ([]node.Message, error) {
	var q url.Values
	if ref != "" {
		q = url.Values{"contact": {ref}}
	}
	var v []node.Message
	return v, c.do(ctx, http.MethodGet, "/v1/files", q, nil, &v)
}

// SaveAttachment writes the file of a message to path, which must not exist.
func (c *Client) SaveAttachment(ctx context.Context, messageID, path string) (*node.Attachment, error) {
	var v node.Attachment
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, http.MethodPost, "/v1/files/save", nil, SaveRequest{Message: messageID, Path: abs}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func (l Local) SendFile(ctx context.Context, ref, path string, o node.SendFileOptions) (node.Message, error) {
	if err := ctx.Err(); err != nil {
		return node.Message{}, err
	}
	return l.N.SendFile(ref, path, o)
}

func (l Local) SendGroupFile(ctx context.Context, group, path string, o node.SendFileOptions) (node.RoomMessage, error) {
	if err := ctx.Err(); err != nil {
		return node.RoomMessage{}, err
	}
	return l.N.SendRoomFile(group, path, o)
}

func (l Local) Attachments(ctx context.Context, ref string) ([]node.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return attachments(l.N.Messages(ref))
}

func (l Local) SaveAttachment(ctx context.Context, messageID, path string) (*node.Attachment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.SaveAttachment(messageID, path)
}
