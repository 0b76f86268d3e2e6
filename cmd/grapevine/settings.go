package main

// grapevine settings: show and change the settings the web UI's settings
// page changes (stealth, relaying, the relay and chunk quotas, the file
// limit, retention), through the
// running node's local API, or in the store when no node runs.

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grapevine-mesh/grapevine/internal/api"
	"github.com/grapevine-mesh/grapevine/internal/node"
)

func (c *cli) settingsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settings [--json]",
		Short: "Show your node's settings: stealth, relaying, quotas, file limit, retention",
		Long: `Show the settings your node runs with. Change them with
grapevine settings set (or on the web UI's settings page): a running node
applies a change at once, and every change is saved in the home, so the node
starts with it next time. --stealth, --no-relay, --relay-quota, --chunk-quota
and --file-limit given to grapevine up win over the saved settings for that
run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.withNode(cmd.Context(), func(n api.Core) error {
				set, err := n.Settings(cmd.Context())
				if err != nil {
					return err
				}
				return c.printSettings(set, n, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(c.settingsSetCmd())
	return cmd
}

func (c *cli) settingsSetCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE...",
		Short: "Change settings: stealth=on|off relay=on|off quota=SIZE chunk-quota=SIZE file-limit=SIZE retention=DAYSd",
		Long: `Change one or more settings, all or none:

  stealth=on|off     on: send nothing unasked on the LAN (no beacons, no
                     multicast joins): link only with peers and whoever dials
  relay=on|off       off: carry nothing for others, keep only your own mail
  quota=SIZE         most space to carry envelopes for others, as up's
                     --relay-quota: 64MiB, 1G, 1.5GB (K, M, G, T and KiB… are
                     powers of 1024; KB, MB… of 1000)
  chunk-quota=SIZE   most space for chunks of others' files, a pool apart
                     from quota's so that files never push texts out: a
                     size, 0 for none, or relay for as much as quota (the
                     default)
  file-limit=SIZE    largest file you send or fetch, from 1MiB to 100MiB
                     (default 16MiB, right for the mesh; more for bundles
                     and internet peers); a message whose file is larger
                     arrives without it, saying why
  retention=DURATION how long keys are kept and your envelopes live: 7d, 36h
                     (from 1d to 31d); a shorter one forgets older keys at once
  fetch-releases=off|mine|all
                     fetch Grapevine releases neighbours offer (grapevine
                     share), verify them against the release key, keep them
                     on your shelf and offer them on: mine for this device's
                     platform (and the source), all for every platform; off
                     (the default) fetches nothing — offers and their chunks
                     are still carried for others, as any

A running node applies them at once: a lower quota evicts what it carries
beyond it, relay=off drops what it carries for others.`,
		Example: `  grapevine settings set quota=64MiB relay=on
  grapevine settings set stealth=on retention=14d
  grapevine settings set file-limit=64MiB chunk-quota=1GiB
  grapevine settings set fetch-releases=mine`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseSettingsArgs(args)
			if err != nil {
				return err
			}
			return c.withNode(cmd.Context(), func(n api.Core) error {
				set, err := n.UpdateSettings(cmd.Context(), u)
				if err != nil {
					return err
				}
				return c.printSettings(set, n, asJSON)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

const settingKeys = "stealth, relay, quota, chunk-quota, file-limit, retention, fetch-releases"

func sizeText(v string) *api.SizeText {
	s := api.SizeText(v)
	return &s
}

// parseSettingsArgs reads KEY=VALUE arguments; values are checked by the
// node (api.SettingsUpdate), on/off here.
func parseSettingsArgs(args []string) (api.SettingsUpdate, error) {
	var u api.SettingsUpdate
	seen := map[string]bool{}
	onOff := func(key, v string) (*bool, error) {
		switch strings.ToLower(v) {
		case "on", "true", "yes":
			t := true
			return &t, nil
		case "off", "false", "no":
			f := false
			return &f, nil
		}
		return nil, fmt.Errorf("%s=%q: want on or off", key, v)
	}
	for _, a := range args {
		key, v, ok := strings.Cut(a, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		if !ok || v == "" {
			return u, fmt.Errorf("%q: want KEY=VALUE, e.g. quota=64MiB (keys: %s)", a, settingKeys)
		}
		key = strings.ReplaceAll(key, "_", "-")
		if key == "relay-quota" {
			key = "quota"
		}
		if seen[key] {
			return u, fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "stealth":
			u.Stealth, err = onOff(key, v)
		case "relay":
			u.Relay, err = onOff(key, v)
		case "quota":
			u.RelayQuota = sizeText(v)
		case "chunk-quota":
			u.ChunkQuota = sizeText(v)
		case "file-limit":
			u.FileLimit = sizeText(v)
		case "retention":
			u.Retention = &v
		case "fetch-releases":
			u.FetchReleases = &v
		default:
			err = fmt.Errorf("unknown setting %q (keys: %s)", key, settingKeys)
		}
		if err != nil {
			return u, err
		}
	}
	return u, nil
}

func (c *cli) printSettings(set api.Settings, n api.Core, asJSON bool) error {
	if asJSON {
		return c.printJSON(set)
	}
	stealth := "off (beacons sent)"
	if set.Stealth {
		stealth = "on (no beacons)"
	}
	relay := "on"
	if !set.Relay {
		relay = "off (only your own mail is kept)"
	}
	quota := bytesText(set.RelayQuota) + " for others"
	if !set.Relay {
		quota += " (when relay is on)"
	}
	chunks := bytesText(set.ChunkQuota) + " for others' file chunks"
	switch {
	case set.ChunkQuota == 0:
		chunks = "none: no chunks carried for others"
	case set.ChunkQuotaOfRelay:
		chunks += " (as quota)"
	}
	c.table([][]string{
		{"stealth:", stealth},
		{"relay:", relay},
		{"quota:", quota},
		{"chunk quota:", chunks},
		{"file limit:", bytesText(set.FileLimit) + " per file sent or fetched"},
		{"retention:", set.Retention},
		{"fetch releases:", fetchText(set.FetchReleases)},
	})
	if len(set.Flags) > 0 {
		fmt.Fprintf(c.stdout, "\nFor this run, grapevine up's flags chose: %s (a change applies now and is saved; the flag wins again at the next start).\n",
			strings.Join(set.Flags, ", "))
	}
	if _, running := n.(*api.Client); !running {
		fmt.Fprintln(c.stdout, "\nNo node is running: these are saved in the home, and the node starts with them.")
	}
	return nil
}

func fetchText(mode string) string {
	switch mode {
	case node.FetchReleasesMine:
		return "mine: releases offered for this device's platform are fetched, verified and offered on"
	case node.FetchReleasesAll:
		return "all: releases offered for every platform are fetched, verified and offered on"
	}
	return "off: offered releases are carried, not fetched"
}
