package api

// Private groups (SPEC §15) through the local API: list, create, invite,
// join, remove, rename, grant admin, leave, post and read. The endpoints
// mirror the node's methods; a group is named by its name or the start of
// its ID, a contact by its name or the start of its fingerprint.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/node"
	"github.com/grapevine-mesh/grapevine/internal/room"
)

// Groups is what the CLI's group commands use of a node: both Local and
// *Client implement it (it is part of Core).
type Groups interface {
	Groups(ctx context.Context) ([]node.RoomConversation, error)
	Group(ctx context.Context, ref string) (node.RoomInfo, error)
	GroupInvitations(ctx context.Context) ([]node.RoomInvitation, error)
	CreateGroup(ctx context.Context, name string) (node.RoomInfo, error)
	InviteToGroup(ctx context.Context, group, contact string) error
	JoinGroup(ctx context.Context, group string) error
	RemoveFromGroup(ctx context.Context, group, contact string) error
	RenameGroup(ctx context.Context, group, name string) error
	MakeGroupAdmin(ctx context.Context, group, contact string) error
	LeaveGroup(ctx context.Context, group string) error
	SendGroup(ctx context.Context, group, text string) (node.RoomMessage, error)
	GroupMessages(ctx context.Context, group string) ([]node.RoomMessage, error)
}

// Request bodies of the group endpoints.
type (
	// GroupRequest is the body of POST /v1/groups (create: name) and of the
	// changes to a group: group, and contact or name as the change needs.
	GroupRequest struct {
		Group   string `json:"group,omitempty"`   // name or ID prefix
		Contact string `json:"contact,omitempty"` // name or fingerprint prefix
		Name    string `json:"name,omitempty"`    // a new group's name, or the new name
	}
	// GroupSendRequest is the body of POST /v1/groups/send.
	GroupSendRequest struct {
		Group string `json:"group"`
		Text  string `json:"text"`
	}
)

func (s *Server) groupRoutes() {
	// The groups as a conversation list: newest activity first, each with
	// its number of posts and its newest post.
	s.handle("GET /v1/groups", func(*http.Request) (any, error) { return list(s.n.RoomConversations()) })
	s.handle("GET /v1/groups/show", func(r *http.Request) (any, error) {
		ref := r.URL.Query().Get("group")
		if ref == "" {
			return nil, bad(`missing query parameter "group": a group's name or the start of its ID`)
		}
		return ok(roomErr(s.n.Room(ref)))
	})
	s.handle("GET /v1/groups/invitations", func(*http.Request) (any, error) { return list(s.n.RoomInvitations()) })
	s.handle("POST /v1/groups", func(r *http.Request) (any, error) {
		req, err := groupRequest(r, false, false, true)
		if err != nil {
			return nil, err
		}
		return ok(roomErr(s.n.CreateRoom(req.Name)))
	})
	change := func(path string, contact, name bool, fn func(req GroupRequest) error) {
		s.handle("POST /v1/groups/"+path, func(r *http.Request) (any, error) {
			req, err := groupRequest(r, true, contact, name)
			if err != nil {
				return nil, err
			}
			return struct{}{}, roomError(fn(req))
		})
	}
	change("invite", true, false, func(q GroupRequest) error { return s.n.InviteToRoom(q.Group, q.Contact) })
	change("join", false, false, func(q GroupRequest) error { return s.n.JoinRoom(q.Group) })
	change("remove", true, false, func(q GroupRequest) error { return s.n.RemoveFromRoom(q.Group, q.Contact) })
	change("rename", false, true, func(q GroupRequest) error { return s.n.RenameRoom(q.Group, q.Name) })
	change("admin", true, false, func(q GroupRequest) error { return s.n.MakeRoomAdmin(q.Group, q.Contact) })
	change("leave", false, false, func(q GroupRequest) error { return s.n.LeaveRoom(q.Group) })
	s.handle("POST /v1/groups/send", func(r *http.Request) (any, error) {
		req, err := decode[GroupSendRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Group == "" {
			return nil, bad(`missing "group": a group's name or the start of its ID`)
		}
		return ok(roomErr(s.n.SendRoom(req.Group, req.Text)))
	})
	s.handle("GET /v1/groups/messages", func(r *http.Request) (any, error) {
		ref := r.URL.Query().Get("group")
		if ref == "" {
			return nil, bad(`missing query parameter "group": a group's name or the start of its ID`)
		}
		return list(s.n.RoomMessages(ref))
	})
}

// groupRequest decodes a GroupRequest and checks that it has the fields
// the endpoint needs.
func groupRequest(r *http.Request, group, contact, name bool) (GroupRequest, error) {
	req, err := decode[GroupRequest](r)
	switch {
	case err != nil:
		return req, err
	case group && req.Group == "":
		return req, bad(`missing "group": a group's name or the start of its ID`)
	case contact && req.Contact == "":
		return req, bad(`missing "contact": a name or fingerprint prefix`)
	case name && req.Name == "":
		return req, bad(`missing "name"`)
	}
	return req, nil
}

// roomError marks a change the group's rules refuse (an admin removing
// itself, the last admin leaving, a full group) as the caller's doing: 400.
func roomError(err error) error {
	if errors.Is(err, room.ErrInvalid) || errors.Is(err, room.ErrNotMember) || errors.Is(err, room.ErrFull) {
		return badRequest{err}
	}
	return err
}

func roomErr[T any](v T, err error) (T, error) { return v, roomError(err) }

// Groups lists the groups the node is in, newest activity first.
func (c *Client) Groups(ctx context.Context) ([]node.RoomConversation, error) {
	var v []node.RoomConversation
	return v, c.do(ctx, http.MethodGet, "/v1/groups", nil, nil, &v)
}

// Group returns one group: its name, epoch, members and admins.
func (c *Client) Group(ctx context.Context, ref string) (node.RoomInfo, error) {
	var v node.RoomInfo
	return v, c.do(ctx, http.MethodGet, "/v1/groups/show", url.Values{"group": {ref}}, nil, &v)
}

// GroupInvitations lists the invitations received and not yet joined.
func (c *Client) GroupInvitations(ctx context.Context) ([]node.RoomInvitation, error) {
	var v []node.RoomInvitation
	return v, c.do(ctx, http.MethodGet, "/v1/groups/invitations", nil, nil, &v)
}

// CreateGroup starts a group with the node as its only member and admin.
func (c *Client) CreateGroup(ctx context.Context, name string) (node.RoomInfo, error) {
	var v node.RoomInfo
	return v, c.do(ctx, http.MethodPost, "/v1/groups", nil, GroupRequest{Name: name}, &v)
}

// InviteToGroup invites a contact into a group the node administers.
func (c *Client) InviteToGroup(ctx context.Context, group, contact string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/invite", nil, GroupRequest{Group: group, Contact: contact}, nil)
}

// JoinGroup answers an invitation.
func (c *Client) JoinGroup(ctx context.Context, group string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/join", nil, GroupRequest{Group: group}, nil)
}

// RemoveFromGroup removes a member (a contact) from a group the node administers.
func (c *Client) RemoveFromGroup(ctx context.Context, group, contact string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/remove", nil, GroupRequest{Group: group, Contact: contact}, nil)
}

// RenameGroup renames a group the node administers.
func (c *Client) RenameGroup(ctx context.Context, group, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/rename", nil, GroupRequest{Group: group, Name: name}, nil)
}

// MakeGroupAdmin makes a member (a contact) an admin.
func (c *Client) MakeGroupAdmin(ctx context.Context, group, contact string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/admin", nil, GroupRequest{Group: group, Contact: contact}, nil)
}

// LeaveGroup leaves a group.
func (c *Client) LeaveGroup(ctx context.Context, group string) error {
	return c.do(ctx, http.MethodPost, "/v1/groups/leave", nil, GroupRequest{Group: group}, nil)
}

// SendGroup posts text to a group: one envelope for all its members.
func (c *Client) SendGroup(ctx context.Context, group, text string) (node.RoomMessage, error) {
	var v node.RoomMessage
	if !utf8.ValidString(text) { // JSON would replace the bad bytes
		return v, errors.New("the message is not valid UTF-8")
	}
	return v, c.do(ctx, http.MethodPost, "/v1/groups/send", nil, GroupSendRequest{Group: group, Text: text}, &v)
}

// GroupMessages lists a group's posts, oldest first.
func (c *Client) GroupMessages(ctx context.Context, group string) ([]node.RoomMessage, error) {
	var v []node.RoomMessage
	return v, c.do(ctx, http.MethodGet, "/v1/groups/messages", url.Values{"group": {group}}, nil, &v)
}

func (l Local) Groups(ctx context.Context) ([]node.RoomConversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.RoomConversations()
}

func (l Local) Group(ctx context.Context, ref string) (node.RoomInfo, error) {
	if err := ctx.Err(); err != nil {
		return node.RoomInfo{}, err
	}
	return l.N.Room(ref)
}

func (l Local) GroupInvitations(ctx context.Context) ([]node.RoomInvitation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.RoomInvitations()
}

func (l Local) CreateGroup(ctx context.Context, name string) (node.RoomInfo, error) {
	if err := ctx.Err(); err != nil {
		return node.RoomInfo{}, err
	}
	return l.N.CreateRoom(name)
}

func (l Local) InviteToGroup(ctx context.Context, group, contact string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.InviteToRoom(group, contact)
}

func (l Local) JoinGroup(ctx context.Context, group string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.JoinRoom(group)
}

func (l Local) RemoveFromGroup(ctx context.Context, group, contact string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.RemoveFromRoom(group, contact)
}

func (l Local) RenameGroup(ctx context.Context, group, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.RenameRoom(group, name)
}

func (l Local) MakeGroupAdmin(ctx context.Context, group, contact string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.MakeRoomAdmin(group, contact)
}

func (l Local) LeaveGroup(ctx context.Context, group string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.LeaveRoom(group)
}

func (l Local) SendGroup(ctx context.Context, group, text string) (node.RoomMessage, error) {
	if err := ctx.Err(); err != nil {
		return node.RoomMessage{}, err
	}
	return l.N.SendRoom(group, text)
}

func (l Local) GroupMessages(ctx context.Context, group string) ([]node.RoomMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.RoomMessages(group)
}
