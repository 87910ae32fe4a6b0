package framework

import (
	"fmt"
	"slices"
	"strings"

	"github.com/proxyproof/proxyproof/clusters"
)

// EnvMigrateTo is the mode the live mode switch spec (label migration)
// switches every node to, from MODE; make validate sets it. Unset, the
// spec skips, saying so: it changes the cluster's mode, which the other
// specs of a make e2e run must not see.
const EnvMigrateTo = "MIGRATE_TO"

// MigrateToFromEnv reads MIGRATE_TO with lookup for a suite running in
// mode: "" when unset, else a mode other than mode.
func MigrateToFromEnv(lookup func(string) (string, bool), mode string) (string, error) {
	v, _ := lookup(EnvMigrateTo)
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	return v, CheckSwitch(mode, v)
}

// CheckSwitch refuses a mode switch that is none: an unknown mode on
// either side or the same mode twice, naming the value and what would do.
func CheckSwitch(from, to string) error {
	modes := []string{clusters.ModeIPTables, clusters.ModeNFTables, clusters.ModeIPVS}
	for _, m := range [][2]string{{"FROM", from}, {"TO", to}} {
		if !slices.Contains(modes, m[1]) {
			return &ParamError{m[0], m[1], "one mode: " + strings.Join(modes, ", ")}
		}
	}
	if from == to {
		var others []string
		for _, m := range modes {
			if m != from {
				others = append(others, m)
			}
		}
		return &ParamError{"TO", to, fmt.Sprintf("a mode other than FROM=%s (%s): a switch to the same mode switches nothing", from, strings.Join(others, " or "))}
	}
	return nil
}
