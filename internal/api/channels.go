package api

// Public channels, Nearby and announcement channels (SPEC §15.11–15.16)
// through the local API: list, join and leave channels, post and read,
// post to and read Nearby, mute, block and unmute a poster, and create,
// follow, post to and delegate announcement channels. The endpoints mirror
// the node's methods. A post costs a proof-of-work stamp (about a second):
// the request waits for it, and a cancelled request stops it.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/grapevine-mesh/grapevine/internal/node"
)

// Channels is what the CLI's channel commands use of a node: both Local
// and *Client implement it (it is part of Core).
type Channels interface {
	Channels(ctx context.Context) ([]node.ChannelInfo, error)
	JoinChannel(ctx context.Context, name, password string, bits int) (node.ChannelInfo, error)
	LeaveChannel(ctx context.Context, name string) error
	PostChannel(ctx context.Context, name, text string) (node.PublicPost, error)
	PostNearby(ctx context.Context, text string, hops int, lifetime time.Duration) (node.PublicPost, error)
	ChannelPosts(ctx context.Context, name string) ([]node.PublicPost, error)
	LatestPosts(ctx context.Context) ([]node.RoomLatest, error)
	MutePoster(ctx context.Context, key, mode string) error
	Announcements(ctx context.Context) ([]node.AnnouncementChannel, error)
	CreateAnnouncements(ctx context.Context, name string) (node.AnnouncementChannel, error)
	FollowAnnouncements(ctx context.Context, owner, name string) error
	Announce(ctx context.Context, name, text string) (node.PublicPost, error)
	DelegateKey(ctx context.Context, owner string) (string, error)
	Delegate(ctx context.Context, name, key string, until time.Time) (string, error)
	AnnounceAs(ctx context.Context, delegation, text string) (node.PublicPost, error)
}

// Request bodies of the channel endpoints.
type (
	// ChannelRequest is the body of POST /v1/channels/join (name, and
	// optionally password and bits, the stamp difficulty) and
	// /v1/channels/leave (name).
	ChannelRequest struct {
		Name     string `json:"name"`
		Password string `json:"password,omitempty"`
		Bits     int    `json:"bits,omitempty"`
	}
	// ChannelPostRequest is the body of POST /v1/channels/post (channel
	// and text) and /v1/nearby/post (text, and optionally hops and
	// lifetime in seconds).
	ChannelPostRequest struct {
		Channel  string `json:"channel,omitempty"`
		Text     string `json:"text"`
		Hops     int    `json:"hops,omitempty"`
		Lifetime int64  `json:"lifetime,omitempty"` // seconds
	}
	// MuteRequest is the body of POST /v1/channels/mute: the poster's key
	// (64 hex digits, as posts show it) and mode "mute", "block" or ""
	// (unmute).
	MuteRequest struct {
		Poster string `json:"poster"`
		Mode   string `json:"mode"`
	}
	// AnnounceRequest is the body of the announcement endpoints: name (my
	// channel, or a local name for one followed), owner (a key, hex), text,
	// key (a delegate's key), until (when a delegation ends) and
	// delegation (hex, to post as a delegate).
	AnnounceRequest struct {
		Name       string    `json:"name,omitempty"`
		Owner      string    `json:"owner,omitempty"`
		Text       string    `json:"text,omitempty"`
		Key        string    `json:"key,omitempty"`
		Until      time.Time `json:"until,omitempty"`
		Delegation string    `json:"delegation,omitempty"`
	}
	// KeyResponse answers /v1/announce/delegate-key and /v1/announce/delegate.
	KeyResponse struct {
		Key string `json:"key"`
	}
)

func (s *Server) channelRoutes() {
	s.handle("GET /v1/channels", func(*http.Request) (any, error) { return list(s.n.Channels()) })
	s.handle("POST /v1/channels/join", func(r *http.Request) (any, error) {
		req, err := decode[ChannelRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Name == "" {
			return nil, bad(`missing "name": a channel's name, such as #market`)
		}
		return ok(s.n.JoinChannel(req.Name, req.Password, req.Bits))
	})
	s.handle("POST /v1/channels/leave", func(r *http.Request) (any, error) {
		req, err := decode[ChannelRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Name == "" {
			return nil, bad(`missing "name": a channel's name`)
		}
		return struct{}{}, s.n.LeaveChannel(req.Name)
	})
	s.handle("POST /v1/channels/post", func(r *http.Request) (any, error) {
		req, err := decode[ChannelPostRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Channel == "" {
			return nil, bad(`missing "channel": a joined channel's name, or nearby`)
		}
		return ok(s.n.PostChannel(r.Context(), req.Channel, req.Text))
	})
	s.handle("GET /v1/channels/posts", func(r *http.Request) (any, error) {
		name := r.URL.Query().Get("channel")
		if name == "" {
			return nil, bad(`missing query parameter "channel": a channel's name, nearby, or announce: and a local name`)
		}
		return list(s.n.ChannelMessages(name))
	})
	s.handle("GET /v1/channels/latest", func(*http.Request) (any, error) { return list(s.n.LatestPosts()) })
	s.handle("POST /v1/channels/mute", func(r *http.Request) (any, error) {
		req, err := decode[MuteRequest](r)
		if err != nil {
			return nil, err
		}
		switch req.Mode {
		case "mute":
			err = s.n.Mute(req.Poster)
		case "block":
			err = s.n.Block(req.Poster)
		case "", "unmute":
			err = s.n.Unmute(req.Poster)
		default:
			return nil, bad(`"mode" is %q: want mute, block or unmute`, req.Mode)
		}
		return struct{}{}, err
	})
	s.handle("GET /v1/nearby", func(*http.Request) (any, error) { return list(s.n.ChannelMessages("nearby")) })
	s.handle("POST /v1/nearby/post", func(r *http.Request) (any, error) {
		req, err := decode[ChannelPostRequest](r)
		if err != nil {
			return nil, err
		}
		if req.Lifetime < 0 || req.Lifetime > int64(1<<62/time.Second) {
			return nil, bad(`"lifetime" is %d seconds`, req.Lifetime)
		}
		return ok(s.n.PostNearby(r.Context(), req.Text, req.Hops, time.Duration(req.Lifetime)*time.Second))
	})
	s.handle("GET /v1/announce", func(*http.Request) (any, error) { return list(s.n.Announcements()) })
	announce := func(path string, fn func(r *http.Request, q AnnounceRequest) (any, error)) {
		s.handle("POST /v1/announce/"+path, func(r *http.Request) (any, error) {
			req, err := decode[AnnounceRequest](r)
			if err != nil {
				return nil, err
			}
			return fn(r, req)
		})
	}
	announce("create", func(_ *http.Request, q AnnounceRequest) (any, error) {
		return ok(s.n.CreateAnnouncements(q.Name))
	})
	announce("follow", func(_ *http.Request, q AnnounceRequest) (any, error) {
		if q.Owner == "" || q.Name == "" {
			return nil, bad(`missing "owner" (the channel's owner key) or "name" (a local name for it)`)
		}
		return struct{}{}, s.n.FollowAnnouncements(q.Owner, q.Name)
	})
	announce("post", func(r *http.Request, q AnnounceRequest) (any, error) {
		if q.Delegation != "" {
			return ok(s.n.AnnounceAs(r.Context(), q.Delegation, q.Text))
		}
		if q.Name == "" {
			return nil, bad(`missing "name" (my announcement channel) or "delegation"`)
		}
		return ok(s.n.Announce(r.Context(), q.Name, q.Text))
	})
	announce("delegate-key", func(_ *http.Request, q AnnounceRequest) (any, error) {
		k, err := s.n.DelegateKey(q.Owner)
		return KeyResponse{Key: k}, err
	})
	announce("delegate", func(_ *http.Request, q AnnounceRequest) (any, error) {
		if q.Name == "" || q.Key == "" || q.Until.IsZero() {
			return nil, bad(`missing "name" (my announcement channel), "key" (the delegate's) or "until"`)
		}
		d, err := s.n.Delegate(q.Name, q.Key, q.Until)
		return KeyResponse{Key: d}, err
	})
}

// Channels lists the joined channels, Nearby first.
func (c *Client) Channels(ctx context.Context) ([]node.ChannelInfo, error) {
	var v []node.ChannelInfo
	return v, c.do(ctx, http.MethodGet, "/v1/channels", nil, nil, &v)
}

// JoinChannel joins a public channel, with an optional password and stamp
// difficulty (0: the default).
func (c *Client) JoinChannel(ctx context.Context, name, password string, bits int) (node.ChannelInfo, error) {
	var v node.ChannelInfo
	return v, c.do(ctx, http.MethodPost, "/v1/channels/join", nil, ChannelRequest{Name: name, Password: password, Bits: bits}, &v)
}

// LeaveChannel leaves a channel.
func (c *Client) LeaveChannel(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/channels/leave", nil, ChannelRequest{Name: name}, nil)
}

func validText(text string) error {
	if !utf8.ValidString(text) { // JSON would replace the bad bytes
		return errors.New("the message is not valid UTF-8")
	}
	return nil
}

// PostChannel posts text to a joined channel (or nearby), stamped.
func (c *Client) PostChannel(ctx context.Context, name, text string) (node.PublicPost, error) {
	var v node.PublicPost
	if err := validText(text); err != nil {
		return v, err
	}
	return v, c.do(ctx, http.MethodPost, "/v1/channels/post", nil, ChannelPostRequest{Channel: name, Text: text}, &v)
}

// PostNearby posts text to Nearby with a hop limit and lifetime (0: the
// defaults).
func (c *Client) PostNearby(ctx context.Context, text string, hops int, lifetime time.Duration) (node.PublicPost, error) {
	var v node.PublicPost
	if err := validText(text); err != nil {
		return v, err
	}
	if lifetime > 0 && lifetime < time.Second {
		lifetime = time.Second
	}
	return v, c.do(ctx, http.MethodPost, "/v1/nearby/post", nil, ChannelPostRequest{Text: text, Hops: hops, Lifetime: int64(lifetime / time.Second)}, &v)
}

// ChannelPosts lists a channel's (or nearby's, or "announce:" and a local
// name) posts, oldest first, without muted or blocked posters'.
func (c *Client) ChannelPosts(ctx context.Context, name string) ([]node.PublicPost, error) {
	var v []node.PublicPost
	return v, c.do(ctx, http.MethodGet, "/v1/channels/posts", url.Values{"channel": {name}}, nil, &v)
}

// LatestPosts is every public room's number of posts and newest post
// (rooms without posts left out).
func (c *Client) LatestPosts(ctx context.Context) ([]node.RoomLatest, error) {
	var v []node.RoomLatest
	return v, c.do(ctx, http.MethodGet, "/v1/channels/latest", nil, nil, &v)
}

// MutePoster mutes ("mute"), blocks ("block") or unmutes ("") a poster
// by key.
func (c *Client) MutePoster(ctx context.Context, key, mode string) error {
	return c.do(ctx, http.MethodPost, "/v1/channels/mute", nil, MuteRequest{Poster: key, Mode: mode}, nil)
}

// Announcements lists the announcement channels I own and follow.
func (c *Client) Announcements(ctx context.Context) ([]node.AnnouncementChannel, error) {
	var v []node.AnnouncementChannel
	return v, c.do(ctx, http.MethodGet, "/v1/announce", nil, nil, &v)
}

// CreateAnnouncements makes my announcement channel name.
func (c *Client) CreateAnnouncements(ctx context.Context, name string) (node.AnnouncementChannel, error) {
	var v node.AnnouncementChannel
	return v, c.do(ctx, http.MethodPost, "/v1/announce/create", nil, AnnounceRequest{Name: name}, &v)
}

// FollowAnnouncements follows an owner's announcement channel under a
// local name.
func (c *Client) FollowAnnouncements(ctx context.Context, owner, name string) error {
	return c.do(ctx, http.MethodPost, "/v1/announce/follow", nil, AnnounceRequest{Owner: owner, Name: name}, nil)
}

// Announce posts to my announcement channel name.
func (c *Client) Announce(ctx context.Context, name, text string) (node.PublicPost, error) {
	var v node.PublicPost
	if err := validText(text); err != nil {
		return v, err
	}
	return v, c.do(ctx, http.MethodPost, "/v1/announce/post", nil, AnnounceRequest{Name: name, Text: text}, &v)
}

// DelegateKey is my key as a delegate of owner.
func (c *Client) DelegateKey(ctx context.Context, owner string) (string, error) {
	var v KeyResponse
	return v.Key, c.do(ctx, http.MethodPost, "/v1/announce/delegate-key", nil, AnnounceRequest{Owner: owner}, &v)
}

// Delegate lets key post to my announcement channel name until a time.
func (c *Client) Delegate(ctx context.Context, name, key string, until time.Time) (string, error) {
	var v KeyResponse
	return v.Key, c.do(ctx, http.MethodPost, "/v1/announce/delegate", nil, AnnounceRequest{Name: name, Key: key, Until: until}, &v)
}

// AnnounceAs posts as a delegate, with the delegation the owner gave.
func (c *Client) AnnounceAs(ctx context.Context, delegation, text string) (node.PublicPost, error) {
	var v node.PublicPost
	if err := validText(text); err != nil {
		return v, err
	}
	return v, c.do(ctx, http.MethodPost, "/v1/announce/post", nil, AnnounceRequest{Delegation: delegation, Text: text}, &v)
}

func (l Local) Channels(ctx context.Context) ([]node.ChannelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Channels()
}

func (l Local) JoinChannel(ctx context.Context, name, password string, bits int) (node.ChannelInfo, error) {
	if err := ctx.Err(); err != nil {
		return node.ChannelInfo{}, err
	}
	return l.N.JoinChannel(name, password, bits)
}

func (l Local) LeaveChannel(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.LeaveChannel(name)
}

func (l Local) PostChannel(ctx context.Context, name, text string) (node.PublicPost, error) {
	return l.N.PostChannel(ctx, name, text)
}

func (l Local) PostNearby(ctx context.Context, text string, hops int, lifetime time.Duration) (node.PublicPost, error) {
	return l.N.PostNearby(ctx, text, hops, lifetime)
}

func (l Local) ChannelPosts(ctx context.Context, name string) ([]node.PublicPost, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.ChannelMessages(name)
}

func (l Local) LatestPosts(ctx context.Context) ([]node.RoomLatest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.LatestPosts()
}

func (l Local) MutePoster(ctx context.Context, key, mode string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch mode {
	case "mute":
		return l.N.Mute(key)
	case "block":
		return l.N.Block(key)
	case "", "unmute":
		return l.N.Unmute(key)
	}
	return errors.New(`mode ` + mode + `: want mute, block or unmute`)
}

func (l Local) Announcements(ctx context.Context) ([]node.AnnouncementChannel, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.N.Announcements()
}

func (l Local) CreateAnnouncements(ctx context.Context, name string) (node.AnnouncementChannel, error) {
	if err := ctx.Err(); err != nil {
		return node.AnnouncementChannel{}, err
	}
	return l.N.CreateAnnouncements(name)
}

func (l Local) FollowAnnouncements(ctx context.Context, owner, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.N.FollowAnnouncements(owner, name)
}

func (l Local) Announce(ctx context.Context, name, text string) (node.PublicPost, error) {
	return l.N.Announce(ctx, name, text)
}

func (l Local) DelegateKey(ctx context.Context, owner string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return l.N.DelegateKey(owner)
}

func (l Local) Delegate(ctx context.Context, name, key string, until time.Time) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return l.N.Delegate(name, key, until)
}

func (l Local) AnnounceAs(ctx context.Context, delegation, text string) (node.PublicPost, error) {
	return l.N.AnnounceAs(ctx, delegation, text)
}
