package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

// withHint adds to an error the caller caused what to do next on the
// command line. The node's errors say what is wrong; only the CLI knows its
// commands.
func withHint(err error) error {
	var reason, contact string
	var ne *node.Error
	var ae *api.Error
	switch {
	case errors.As(err, &ne):
		reason, contact = ne.Reason, ne.Contact
	case errors.As(err, &ae):
		reason, contact = ae.Reason, ae.Contact
	default:
		return err
	}
	switch reason {
	case node.ReasonNoRoom:
		if strings.Contains(err.Error(), "not in channel") {
			return fmt.Errorf("%w (grapevine channels lists the channels you joined)", err)
		}
		return fmt.Errorf("%w (grapevine groups lists your groups and invitations)", err)
	case node.ReasonNotAdmin:
		return fmt.Errorf("%w (grapevine groups show GROUP lists its admins)", err)
	case node.ReasonAlreadyContact:
		if contact == "" {
			return err
		}
		return fmt.Errorf("%w (to start new keys with them: grapevine contacts rekey %q)", err, contact)
	case node.ReasonNameTaken:
		return fmt.Errorf("%w: choose another with --name", err)
	case node.ReasonRequestWaiting:
		return fmt.Errorf("%w (grapevine contacts accept %q, or reject)", err, contact)
	}
	return err
}
