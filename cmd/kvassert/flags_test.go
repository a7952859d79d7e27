package main

import (
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kvassert/kvassert/internal/redact"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// testRoot is the command tree as the binary builds it.
func testRoot() *cobra.Command {
	red := redact.NewWriter(io.Discard)
	a := &App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: red, Getenv: func(string) string { return "" },
		flagFrom: map[string]string{}, redactor: red}
	a.setLogger()
	return newRootCmd(a)
}

// cmdFlag is one flag of one command (inherited persistent flags included).
type cmdFlag struct {
	cmd string
	f   *pflag.Flag
}

// allFlags lists every flag of every command.
func allFlags(root *cobra.Command) []cmdFlag {
	var out []cmdFlag
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.InheritedFlags().VisitAll(func(f *pflag.Flag) { out = append(out, cmdFlag{c.CommandPath(), f}) })
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { out = append(out, cmdFlag{c.CommandPath(), f}) })
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}

// flagConcepts are the concepts users name in more than one way (az, gh,
// kubectl spellings and ours); a concept may have one visible name only.
var flagConcepts = map[string][]string{
	"the certificate's name in the vault": {"cert", "name", "cert-name", "certificate", "certificate-name"},
	"the vault":                           {"vault", "vault-name", "vault-url", "keyvault", "key-vault", "vault-uri"},
	"the tenant":                          {"tenant", "tenant-id", "directory"},
	"the app's client ID":                 {"client-id", "app-id", "appid", "application-id"},
	"the token's scope":                   {"scope", "scopes"},
	"the assertion's audience":            {"audience", "aud"},
	"the output format":                   {"output", "format-output", "out-format"},
	"a listening address":                 {"listen", "addr", "address", "bind"},
	"the app's object ID":                 {"app-object-id", "object-id", "id"},
	"a managed identity":                  {"managed-identity", "identity", "mi-client-id"},
	"verbosity":                           {"verbose", "v"},
}

// TestOneFlagNamePerConcept lists every flag of every command and fails
// when a concept has two visible names, a flag name two shorthands (or a
// shorthand two flags), a file the CLI writes is not named *-out/out, or a
// hidden alias is not in flagAliases.
func TestOneFlagNamePerConcept(t *testing.T) {
	t.Parallel()
	flags := allFlags(testRoot())
	if len(flags) < 50 {
		t.Fatalf("only %d flags found", len(flags))
	}
	conceptOf := map[string]string{}
	for c, names := range flagConcepts {
		for _, n := range names {
			conceptOf[n] = c
		}
	}
	visible := map[string]map[string][]string{} // concept -> name -> commands
	short := map[string]string{}                // name -> shorthand
	long := map[string]string{}                 // shorthand -> name
	for _, cf := range flags {
		f := cf.f
		if to := f.Annotations[annAliasOf]; len(to) > 0 {
			if !f.Hidden || flagAliases[f.Name] != to[0] {
				t.Errorf("%s: alias --%s of --%s is not hidden or not in flagAliases", cf.cmd, f.Name, to[0])
			}
			if f.Shorthand != "" {
				t.Errorf("%s: alias --%s has the shorthand -%s (shorthands stay with the current flag)", cf.cmd, f.Name, f.Shorthand)
			}
			continue
		}
		if f.Hidden {
			continue
		}
		if c, ok := conceptOf[f.Name]; ok {
			if visible[c] == nil {
				visible[c] = map[string][]string{}
			}
			visible[c][f.Name] = append(visible[c][f.Name], cf.cmd)
		}
		if old, ok := short[f.Name]; ok && old != f.Shorthand {
			t.Errorf("%s: --%s has the shorthand %q, elsewhere %q", cf.cmd, f.Name, f.Shorthand, old)
		}
		short[f.Name] = f.Shorthand
		if f.Shorthand != "" {
			if n, ok := long[f.Shorthand]; ok && n != f.Name {
				t.Errorf("%s: -%s is --%s, elsewhere --%s", cf.cmd, f.Shorthand, f.Name, n)
			}
			long[f.Shorthand] = f.Name
		}
		if f.Shorthand == "v" || f.Name == "v" {
			t.Errorf("%s: -v is --%s; -v reads as verbosity (kubectl)", cf.cmd, f.Name)
		}
		writes := strings.HasPrefix(f.Usage, "write ") || strings.HasPrefix(f.Usage, "also write ")
		if writes && f.Name != "out" && !strings.HasSuffix(f.Name, "-out") {
			t.Errorf("%s: --%s writes a file but is not named out or *-out: %q", cf.cmd, f.Name, f.Usage)
		}
	}
	for c, names := range visible {
		if len(names) > 1 {
			var list []string
			for n, cmds := range names {
				list = append(list, "--"+n+" ("+strings.Join(slices.Compact(cmds), ", ")+")")
			}
			sort.Strings(list)
			t.Errorf("%s has %d visible names: %s", c, len(names), strings.Join(list, "; "))
		}
	}
	// The renamed flags' current names are what the concept table expects.
	for old, cur := range flagAliases {
		if conceptOf[old] != "" && conceptOf[old] != conceptOf[cur] {
			t.Errorf("alias --%s and --%s are different concepts", old, cur)
		}
	}
}

// TestRenamedFlagAliases: the old spellings still work for one release,
// with a deprecation note on stderr; both spellings with different values
// are a usage error.
func TestRenamedFlagAliases(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"cert", "show", "--name", scenario.DemoCertificate, "-o", "json"}, "KVASSERT_CERT=")
	wantOK(t, r)
	if !strings.Contains(r.stdout, scenario.DemoCertificate) {
		t.Errorf("cert show --name: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "warning: --name is deprecated and will be removed in the next release; use --cert") {
		t.Errorf("no deprecation note:\n%s", r.stderr)
	}
	// The alias counts as given on the command line: KVASSERT_CERT does
	// not override it.
	r = env.run([]string{"cert", "show", "--name", "nope"})
	wantExit(t, r, exitFailure)
	if !strings.Contains(r.stderr, "nope") {
		t.Errorf("--name nope did not win over KVASSERT_CERT:\n%s", r.stderr)
	}
	r = env.run([]string{"cert", "show", "-n", scenario.DemoCertificate}, "KVASSERT_CERT=")
	wantOK(t, r)
	if strings.Contains(r.stderr, "deprecated") {
		t.Errorf("-n (the current flag's shorthand) warns:\n%s", r.stderr)
	}
	r = env.run([]string{"cert", "show", "--name", "a1", "--cert", "b2"})
	wantError(t, r, exitUsage, "--name and its new name --cert are both given", "give --cert only")

	r = runBin(t, nil, "", []string{"cert", "show", "--help"})
	wantOK(t, r)
	if strings.Contains(r.stdout, "--name") || !strings.Contains(r.stdout, "-n, --cert") {
		t.Errorf("cert show --help shows the alias or lacks -n, --cert:\n%s", r.stdout)
	}
	r = runBin(t, nil, "", []string{"proxy", "--help"})
	wantOK(t, r)
	if strings.Contains(r.stdout, "--secret-file") || !strings.Contains(r.stdout, "--secret-out") {
		t.Errorf("proxy --help:\n%s", r.stdout)
	}
}

// TestNoShortVersion: -v is not --version.
func TestNoShortVersion(t *testing.T) {
	t.Parallel()
	r := runBin(t, nil, "", []string{"-v"})
	wantError(t, r, exitUsage, "unknown shorthand flag: 'v'", "")
}
