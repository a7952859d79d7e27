package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Renamed flags. Every concept has one visible flag name across the
// commands (TestOneFlagNamePerConcept); an older spelling stays for one
// release as a hidden alias: a flag of its own that setup copies into the
// current flag (as if that had been given), with a deprecation note on
// stderr.

// annAliasOf marks a hidden alias flag with the name of the flag it stands
// for.
const annAliasOf = "kvassert_alias_of"

// flagAliases are the renamed flags, old spelling -> current one. Release
// notes and the README's rename table list the same.
var flagAliases = map[string]string{
	"name":        "cert",       // cert create/show/export/audit/status/roll: --name -> --cert (-n stays, now on --cert everywhere)
	"secret-file": "secret-out", // proxy: files the CLI writes end in -out (--out, --ca-out)
}

// aliasFlag adds the hidden alias old (with its shorthand, "" for none) of
// the string flag current, which must be defined already.
func aliasFlag(cmd *cobra.Command, old, shorthand, current string) {
	fs := cmd.Flags()
	if fs.Lookup(current) == nil {
		panic("aliasFlag: no flag " + current) // a programming error, caught by every test run
	}
	fs.StringP(old, shorthand, "", "deprecated: use --"+current)
	_ = fs.MarkHidden(old)
	_ = fs.SetAnnotation(old, annAliasOf, []string{current})
}

// resolveAliases copies every alias given on the command line into its
// flag, with a deprecation note; giving both spellings is a usage error
// unless they agree.
func (a *App) resolveAliases(cmd *cobra.Command) error {
	fs := cmd.Flags()
	var err error
	fs.Visit(func(f *pflag.Flag) {
		to := f.Annotations[annAliasOf]
		if err != nil || len(to) != 1 {
			return
		}
		cur := fs.Lookup(to[0])
		if cur.Changed && cur.Value.String() != f.Value.String() {
			err = usageError(fmt.Sprintf("--%s and its new name --%s are both given, with different values", f.Name, cur.Name), "give --"+cur.Name+" only")
			return
		}
		if serr := fs.Set(cur.Name, f.Value.String()); serr != nil {
			err = usageError(fmt.Sprintf("--%s: %v", cur.Name, serr), fmt.Sprintf("run '%s --help' for the flags it takes", cmd.CommandPath()))
			return
		}
		a.warn("--%s is deprecated and will be removed in the next release; use --%s", f.Name, cur.Name)
	})
	return err
}
