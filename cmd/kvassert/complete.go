package main

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Shell completion ("kvassert completion bash|zsh|fish|powershell" is
// cobra's). Flags whose values are known complete them; flags that take a
// file are marked where they are defined (MarkFlagFilename,
// MarkFlagDirname); every other flag that takes a value offers nothing
// rather than file names.

// -o/--output completes outputFormats (output.go).

// certCompletionTimeout bounds the listing of the vault's certificates
// while a shell waits for completions.
const certCompletionTimeout = 5 * time.Second

// certCompletionMax bounds the names offered.
const certCompletionMax = 500

// completeFlags registers the completion of every flag of every command
// under root that has none yet and takes no file: the certificate names of
// --vault for --cert, nothing for the rest.
func completeFlags(a *App, root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		visit := func(f *pflag.Flag) {
			if f.Value.Type() == "bool" {
				return
			}
			if _, ok := f.Annotations[cobra.BashCompFilenameExt]; ok {
				return
			}
			if _, ok := f.Annotations[cobra.BashCompSubdirsInDir]; ok {
				return
			}
			if _, ok := cmd.GetFlagCompletionFunc(f.Name); ok {
				return
			}
			fn := noCompletion
			name := f.Name
			if to := f.Annotations[annAliasOf]; len(to) == 1 {
				name = to[0] // a renamed flag completes as its new name
			}
			if name == "cert" && cmd.Flags().Lookup("vault") != nil {
				fn = a.certNameCompletion
			}
			_ = cmd.RegisterFlagCompletionFunc(f.Name, fn)
		}
		cmd.PersistentFlags().VisitAll(visit)
		cmd.LocalNonPersistentFlags().VisitAll(visit)
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(root)
}

// noCompletion offers nothing, and no file names.
func noCompletion(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// certNameCompletion lists the certificates of the vault that --vault (or
// KVASSERT_VAULT) names, with the CLI's Key Vault credential and the
// emulator when configured, within certCompletionTimeout. Any error (no
// vault, no credential, a refusal, a timeout) offers nothing: completion
// never prompts and prints nothing.
func (a *App) certNameCompletion(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	const none = cobra.ShellCompDirectiveNoFileComp
	ctx, cancel := context.WithTimeout(cmd.Context(), certCompletionTimeout)
	defer cancel()
	names, err := a.listCertificateNames(ctx, cmd)
	if err != nil {
		return nil, none
	}
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(strings.ToLower(n), strings.ToLower(toComplete)) {
			out = append(out, n)
		}
	}
	return out, none
}

// listCertificateNames reads the certificate names of the command's vault,
// sorted. The App is made quiet first: completion output is the shell's.
func (a *App) listCertificateNames(ctx context.Context, cmd *cobra.Command) ([]string, error) {
	a.Stderr = io.Discard
	a.Logger = slog.New(slog.DiscardHandler)
	a.Debug, a.Verbose, a.completing = false, false, true
	if err := a.applyEnv(cmd); err != nil {
		return nil, err
	}
	vault, err := cmd.Flags().GetString("vault")
	if err != nil || vault == "" {
		return nil, errNoResult
	}
	if _, err := cloudByName(a.cloudName); err != nil {
		return nil, err
	}
	a.envErr = a.loadEmulator()
	client, err := a.certClient(vault)
	if err != nil {
		return nil, err
	}
	var names []string
	pager := client.NewListCertificatePropertiesPager(nil)
	for pager.More() && len(names) < certCompletionMax {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Value {
			if p.ID != nil {
				names = append(names, p.ID.Name())
			}
		}
	}
	sort.Strings(names)
	return names, nil
}
