package node

import (
	"errors"
	"fmt"
)

// Kinds of errors the caller caused, as opposed to the node failing: every
// *Error is one of them (errors.Is), and the local API answers them with a
// 4xx status rather than 500.
var (
	// ErrInvalid: what was given is malformed or out of bounds (an empty or
	// oversized text, a name that could deceive, a reference that matches
	// several contacts).
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the request does not fit how things stand (one's own
	// invite, already a contact, a name taken, not a contact request).
	ErrConflict = errors.New("conflict")
	// ErrExpired: the invite it needs has expired.
	ErrExpired = errors.New("expired")
)

// Reasons say more precisely what an *Error is about, so that a front end
// (the CLI, an app) can say what to do next; node errors themselves carry no
// command-line hints.
const (
	ReasonOwnInvite      = "own_invite"
	ReasonAlreadyContact = "already_contact"
	ReasonNameTaken      = "name_taken"
	ReasonNotRequest     = "not_request"
	ReasonRequestWaiting = "request_waiting" // they asked first: accept (or reject) before anything else
	ReasonInvalidName    = "invalid_name"
	ReasonInvalidText    = "invalid_text"
	ReasonAmbiguous      = "ambiguous"
	ReasonInviteExpired  = "invite_expired"
	ReasonNoRoom         = "no_room"
	ReasonNotAdmin       = "not_admin"
	ReasonNotAnswered    = "not_answered" // my request to them has had no answer yet: the contact is not active
)

// Error is an error the caller caused.
type Error struct {
	Kind    error  // ErrInvalid, ErrConflict or ErrExpired
	Reason  string // one of the Reason constants
	Contact string // the contact's name, when it is about one
	Msg     string
	Err     error // the cause, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Is makes errors.Is(err, ErrInvalid) (or ErrConflict, ErrExpired) hold.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

func invalid(reason, format string, a ...any) *Error {
	return &Error{Kind: ErrInvalid, Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

func conflict(reason, contact, format string, a ...any) *Error {
	return &Error{Kind: ErrConflict, Reason: reason, Contact: contact, Msg: fmt.Sprintf(format, a...)}
}

func expired(contact, format string, a ...any) *Error {
	return &Error{Kind: ErrExpired, Reason: ReasonInviteExpired, Contact: contact, Msg: fmt.Sprintf(format, a...)}
}

// badName wraps what keys.NormalizeName said of a name.
func badName(err error) *Error {
	return &Error{Kind: ErrInvalid, Reason: ReasonInvalidName, Msg: "invalid name", Err: err}
}
