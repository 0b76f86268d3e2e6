package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/release"
)

func (c *cli) verifyCmd() *cobra.Command {
	var sigPath, keyPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE [--sig FILE.minisig]",
		Short: "Check that a grapevine binary (or SHA256SUMS) is an authentic release",
		Long: `Check a release file — a grapevine binary someone handed you, or a release's
SHA256SUMS — against its signature (FILE.minisig unless --sig says otherwise),
made with the project's release key. This grapevine carries the public half
of that key, so no network is needed: a binary that travelled hand to hand
can be checked by any grapevine you already trust.

It says which version and platform the signature vouches for. Run nothing it
refuses. Signatures are minisign's format: minisign -Vm FILE -p KEY checks
them too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			key, err := releaseKey(keyPath)
			if err != nil {
				return err
			}
			if sigPath == "" {
				sigPath = file + release.SigSuffix
			}
			sig, err := os.ReadFile(sigPath)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("no signature %s: give the signature file that came with %s with --sig", safe(sigPath), safe(file))
			} else if err != nil {
				return fmt.Errorf("failed to read the signature: %w", err)
			}
			f, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("failed to open the file to verify: %w", err)
			}
			defer f.Close()
			trusted, err := release.Verify(key, f, sig)
			if errors.Is(err, release.ErrBadSignature) {
				return fmt.Errorf("REFUSED: %s is not what the release key signed (%v). It was altered or replaced: do not run it", safe(file), err)
			} else if err != nil {
				return fmt.Errorf("%s is not a release signature: %w", safe(sigPath), err)
			}
			tc := release.ParseTrustedComment(trusted)
			if asJSON {
				return c.printJSON(struct {
					File     string `json:"file"`
					Key      string `json:"key"`
					Signed   string `json:"signed_name"`
					Version  string `json:"version"`
					Commit   string `json:"commit"`
					Platform string `json:"platform"`
					Trusted  string `json:"trusted_comment"`
				}{file, key.ID.String(), tc["file"], tc["version"], tc["commit"], tc["platform"], trusted})
			}
			fmt.Fprintf(c.stdout, "Good signature by release key %s.\n", key.ID)
			what := safe(tc["file"])
			if v := tc["version"]; v != "" {
				what += ", version " + safe(v)
			}
			if p := tc["platform"]; p != "" {
				what += " for " + safe(p)
			}
			if cm := tc["commit"]; cm != "" {
				what += ", commit " + safe(cm)
			}
			fmt.Fprintf(c.stdout, "%s is %s\n", safe(file), what)
			return nil
		},
	}
	cmd.Flags().StringVar(&sigPath, "sig", "", "the signature file (default FILE.minisig)")
	cmd.Flags().StringVar(&keyPath, "pubkey", "", "check against this minisign public key instead of the project's")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {file, key, signed_name, version, commit, platform, trusted_comment} as JSON")
	return cmd
}

// releaseKey is the key release files are checked against: the one in
// keyPath if given, else the project's, which this binary carries.
func releaseKey(keyPath string) (release.PublicKey, error) {
	if keyPath != "" {
		b, err := os.ReadFile(keyPath)
		if err != nil {
			return release.PublicKey{}, fmt.Errorf("failed to read the public key: %w", err)
		}
		key, err := release.ParsePublicKey(b)
		if err != nil {
			return release.PublicKey{}, fmt.Errorf("%s is not a minisign public key: %w", safe(keyPath), err)
		}
		return key, nil
	}
	key, err := release.ProjectKey()
	if errors.Is(err, release.ErrNoProjectKey) {
		return release.PublicKey{}, fmt.Errorf("%w (a development build): give the key to check against with --pubkey FILE", err)
	}
	return key, err
}
