package release

import (
	_ "embed"
	"errors"
	"strings"
)

// projectKey is the public half of the project's release key, compiled into
// every grapevine binary: release.pub, in minisign's format. Its secret half
// never touches a networked machine (README, "Releases"). A build without
// one (the file holds only comments) cannot verify releases with it.
//
//go:embed release.pub
var projectKey []byte

// ErrNoProjectKey is returned by ProjectKey in a build that carries no
// release key.
var ErrNoProjectKey = errors.New("this grapevine was built without the project's release key")

// ProjectKey is the release key every grapevine binary trusts.
func ProjectKey() (PublicKey, error) {
	var lines []string
	for _, l := range nonEmptyLines(projectKey) {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return PublicKey{}, ErrNoProjectKey
	}
	return ParsePublicKey([]byte(strings.Join(lines, "\n")))
}
