package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// completion runs cobra's __complete and returns the completions and the
// directive line.
func completion(t *testing.T, r result) ([]string, string) {
	t.Helper()
	wantOK(t, r)
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("kvassert %v: no directive:\n%s", r.args, r.stdout)
	}
	var vals []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		vals = append(vals, v)
	}
	return vals, lines[len(lines)-1]
}

// noFiles is the directive ShellCompDirectiveNoFileComp.
const noFiles = ":4"

// TestCompletion completes through cobra's __complete command, as the shell
// scripts do: fixed values, no file names where none is meant, and the
// certificates of the vault (from --vault or KVASSERT_VAULT) against the
// emulator.
func TestCompletion(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	env.run([]string{"cert", "create", "--cert", "another-cert"})
	fixed := []struct {
		args []string
		want []string
	}{
		{[]string{"token", "-o", ""}, outputFormats},
		{[]string{"cert", "export", "--format", ""}, []string{"der", "pem", "keycredential"}},
		{[]string{"cert", "audit", "--fail-on", ""}, []string{"warn", "fail"}},
		{[]string{"token", "--alg", ""}, []string{"PS256", "RS256"}},
		{[]string{"token", "--tenant", ""}, nil},
		{[]string{"token", "--client-id", ""}, nil},
		{[]string{"cert", "show", "--vault", ""}, nil},
		{[]string{"emulate", "--listen", ""}, nil},
	}
	for _, c := range fixed {
		vals, dir := completion(t, runBin(t, nil, "", append([]string{"__complete"}, c.args...)))
		if strings.Join(vals, " ") != strings.Join(c.want, " ") || dir != noFiles {
			t.Errorf("__complete %v = %q %s, want %q %s", c.args, vals, dir, c.want, noFiles)
		}
	}
	// A file flag still offers files (filtered by extension).
	if _, dir := completion(t, runBin(t, nil, "", []string{"__complete", "token", "--cert-file", ""})); dir != ":8" {
		t.Errorf("--cert-file directive %s, want :8 (filter by extension)", dir)
	}

	// Certificate names from the vault: --vault given, or KVASSERT_VAULT.
	want := []string{"another-cert", scenario.DemoCertificate}
	for _, args := range [][]string{
		{"__complete", "cert", "show", "--vault", env.vaultURL(), "--cert", ""},
		{"__complete", "cert", "show", "-n", ""},
		{"__complete", "cert", "show", "--name", ""}, // the old spelling offered file names
		{"__complete", "cert", "roll", "--cert", ""},
		{"__complete", "token", "--cert", ""},
		{"__complete", "decode", "--cert", ""},
	} {
		vals, dir := completion(t, env.run(args))
		if strings.Join(vals, " ") != strings.Join(want, " ") || dir != noFiles {
			t.Errorf("%v = %q %s, want %q %s", args[1:], vals, dir, want, noFiles)
		}
	}
	vals, _ := completion(t, env.run([]string{"__complete", "cert", "show", "--cert", "an"}))
	if strings.Join(vals, " ") != "another-cert" {
		t.Errorf("prefix an: %q", vals)
	}
	// No vault, or the vault cannot be read: nothing, quickly, no prompt, no
	// error text.
	// A vault that accepts connections and never answers.
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stall.Close() })
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	for _, c := range []struct {
		extra  []string
		within time.Duration
	}{
		{[]string{"KVASSERT_VAULT="}, 3 * time.Second},
		{[]string{"KVASSERT_EMULATOR_CLIENT_SECRET=wrong-secret-value"}, 3 * time.Second},
		{[]string{"KVASSERT_EMULATOR=https://127.0.0.1:1"}, 3 * time.Second}, // refused: no retries
		{[]string{"KVASSERT_EMULATOR=https://" + stall.Addr().String()}, certCompletionTimeout + 3*time.Second},
	} {
		extra := c.extra
		start := time.Now()
		r := env.run([]string{"__complete", "cert", "show", "--cert", ""}, extra...)
		vals, dir := completion(t, r)
		if len(vals) != 0 || dir != noFiles {
			t.Errorf("%v: %q %s, want nothing %s", extra, vals, dir, noFiles)
		}
		if d := time.Since(start); d > c.within {
			t.Errorf("%v: completion took %v", extra, d)
		}
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			if !strings.HasPrefix(l, "Completion ended with directive") {
				t.Errorf("%v: stderr line %q", extra, l)
			}
		}
		t.Logf("%v: %v", extra, time.Since(start))
	}
}
