package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// conflict is a pair of flags that cannot be given together, and the hint
// the refusal gives ("" for the command's help).
type conflict struct {
	a, b string
	hint string
}

// conflictsAnnotation holds a command's conflicts, "a b" pairs separated by
// ";", read by checkConflicts; conflictHints the hints by pair.
const conflictsAnnotation = "kvassert/conflicts"

// conflictHints are the hints of the registered pairs, by "a b".
var conflictHints = map[string]string{}

// exclusive registers pairs of cmd's flags that cannot both be given on
// the command line. A flag that does not exist is a programming error,
// caught by every test run.
func exclusive(cmd *cobra.Command, pairs ...conflict) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	list := cmd.Annotations[conflictsAnnotation]
	for _, p := range pairs {
		for _, n := range []string{p.a, p.b} {
			if cmd.Flags().Lookup(n) == nil {
				panic("exclusive: " + cmd.CommandPath() + " has no flag --" + n)
			}
		}
		if list != "" {
			list += ";"
		}
		list += p.a + " " + p.b
		if p.hint != "" {
			conflictHints[p.a+" "+p.b] = p.hint
		}
	}
	cmd.Annotations[conflictsAnnotation] = list
}

// conflictsOf lists cmd's registered pairs.
func conflictsOf(cmd *cobra.Command) []conflict {
	var out []conflict
	for _, p := range strings.Split(cmd.Annotations[conflictsAnnotation], ";") {
		a, b, ok := strings.Cut(p, " ")
		if ok {
			out = append(out, conflict{a, b, conflictHints[p]})
		}
	}
	return out
}

// checkConflicts refuses two flags of a registered pair given together on
// the command line, whatever their values (a flag given with its default
// value counts; one filled from the environment does not: the command line
// wins over the environment).
func (a *App) checkConflicts(cmd *cobra.Command) error {
	fs := cmd.Flags()
	given := func(n string) bool { return fs.Changed(n) && !a.fromEnv(n) }
	for _, c := range conflictsOf(cmd) {
		if given(c.a) && given(c.b) {
			hint := c.hint
			if hint == "" {
				hint = fmt.Sprintf("run '%s --help' for what each flag means", cmd.CommandPath())
			}
			return usageError(fmt.Sprintf("give either --%s or --%s, not both", c.a, c.b), hint)
		}
	}
	return nil
}

// credConflicts are the pairs of credential flags (credFlags) that name
// different credentials or do not apply to each other's.
func credConflicts() []conflict {
	var out []conflict
	miHint := "--managed-identity uses the managed identity's token as the client assertion: no certificate, no assertion flags"
	for _, f := range []string{"vault", "cert", "key-id", "cert-file", "key-file", "thumbprint", "password-env", "alg", "lifetime", "x5c"} {
		out = append(out, conflict{"managed-identity", f, miHint})
	}
	vaultHint := "--vault and --cert name a Key Vault certificate; --key-id with --cert-file or --thumbprint a Key Vault key; --cert-file alone a local certificate"
	for _, v := range []string{"vault", "cert"} {
		for _, f := range []string{"key-id", "cert-file", "key-file", "thumbprint", "password-env"} {
			out = append(out, conflict{v, f, vaultHint})
		}
	}
	return append(out,
		conflict{"key-id", "key-file", "the key of --key-id is in the vault: give the certificate with --cert-file or --thumbprint"},
		conflict{"key-id", "password-env", "--password-env is for a local PKCS#12 --cert-file"},
		conflict{"cert-file", "thumbprint", "--thumbprint and --cert-file both name the certificate of --key-id: give one"},
		conflict{"key-file", "thumbprint", "--thumbprint goes with --key-id, --key-file with a local --cert-file"},
		conflict{"thumbprint", "password-env", "--password-env is for a local PKCS#12 --cert-file"},
	)
}

// tokenCacheConflicts are the pairs of --token-cache key flags: one key.
func tokenCacheConflicts() []conflict {
	h := "all replicas sharing the cache must use the same key: give one of --token-cache-key-env, --token-cache-key-file and --token-cache-wrap-key"
	return []conflict{
		{"token-cache-key-env", "token-cache-key-file", h},
		{"token-cache-key-env", "token-cache-wrap-key", h},
		{"token-cache-key-file", "token-cache-wrap-key", h},
	}
}
