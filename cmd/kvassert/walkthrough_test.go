package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The README's emulator walk-through (the sh block between
// <!-- walkthrough --> and <!-- /walkthrough -->) runs as written, in bash,
// against "kvassert emulate" with the lines it printed: every command of the
// CLI, cert status and cert roll included.

// pendingCommands are walk-through commands that other branches add; while
// this build lacks one, its lines are left out (and logged). Once the
// command exists the test fails until its entry is removed here, so that
// the walk-through runs whole.
var pendingCommands = [][]string{}

// walkthroughLines returns the lines of the walk-through block and the
// README line number of its first line.
func walkthroughLines(t *testing.T) ([]string, int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case "<!-- walkthrough -->":
			start = i
		case "<!-- /walkthrough -->":
			end = i
		}
	}
	if start < 0 || end < start+3 || strings.TrimSpace(lines[start+1]) != "```sh" || strings.TrimSpace(lines[end-1]) != "```" {
		t.Fatal("README.md has no ```sh block between <!-- walkthrough --> and <!-- /walkthrough -->")
	}
	return lines[start+2 : end-1], start + 3
}

// isCommand reports whether the CLI has the command path words.
func isCommand(words []string) bool {
	root := newRootCmd(&App{Getenv: func(string) string { return "" }, flagFrom: map[string]string{}})
	c, _, err := root.Find(words)
	return err == nil && c.CommandPath() == "kvassert "+strings.Join(words, " ")
}

// TestWalkthroughCoversEveryCommand: every command of the CLI appears in
// the walk-through (emulate runs it; help is cobra's).
func TestWalkthroughCoversEveryCommand(t *testing.T) {
	lines, _ := walkthroughLines(t)
	block := strings.Join(lines, "\n") + "\n"
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "emulate" {
				continue
			}
			if sub.Runnable() {
				path := sub.CommandPath()
				if !strings.Contains(block, path+" ") && !strings.Contains(block, path+"\n") {
					t.Errorf("the README's walk-through never runs %q", path)
				}
			}
			visit(sub)
		}
	}
	visit(newRootCmd(&App{Getenv: func(string) string { return "" }, flagFrom: map[string]string{}}))
	if !strings.Contains(block, "kvassert completion ") {
		t.Error("the README's walk-through never runs kvassert completion")
	}
}

func TestWalkthrough(t *testing.T) {
	t.Parallel()
	lines, first := walkthroughLines(t)
	lines = append([]string(nil), lines...)
	for _, words := range pendingCommands {
		name := "kvassert " + strings.Join(words, " ")
		if isCommand(words) {
			t.Errorf("%s is a command now: remove it from pendingCommands in walkthrough_test.go", name)
			continue
		}
		for i, l := range lines {
			if strings.Contains(l, name+" ") || strings.HasSuffix(l, name) {
				t.Logf("README.md line %d left out: %s is not in this build yet", first+i, name)
				lines[i] = ": # " + name + " (not in this build)"
			}
		}
	}

	// The proxy's default port would collide with anything else on this
	// machine: the walk-through runs with a free one (KVASSERT_PROXY_LISTEN).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := l.Addr().String()
	l.Close()
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], "127.0.0.1:5616", proxyAddr)
	}

	em := startEmulate(t, "--listen", "127.0.0.1:0", "--ca-out", filepath.Join(t.TempDir(), "ca.pem"), "--shell", "bash")
	dir := t.TempDir()
	// The user pastes emulate's export lines as printed (bash syntax), not
	// values the test parsed out of them: their quoting is part of the test.
	var pasted []string
	for _, l := range em.stdout {
		if strings.HasPrefix(l, "export ") {
			pasted = append(pasted, l)
		}
	}
	prelude := append([]string{"set -eo pipefail"}, pasted...)
	prelude = append(prelude,
		fmt.Sprintf(`trap 'echo "walkthrough: README.md line $((LINENO + %d)) failed with exit $?: $BASH_COMMAND" >&2' ERR`, first-3-len(pasted)))
	script := strings.Join(append(prelude, lines...), "\n") + "\nwait\n"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = hermeticEnv(t, nil, "PATH="+filepath.Dir(kvassertBin)+":/usr/local/bin:/usr/bin:/bin", "KVASSERT_PROXY_LISTEN="+proxyAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a proxy left behind by a failed line
	out, errs := stdout.String(), stderr.String()
	if err != nil {
		tail := errs
		if i := strings.LastIndex(tail, "walkthrough: README.md line"); i >= 0 {
			tail = tail[i:]
		} else if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("the README's walk-through failed (%v):\n%s\nstdout:\n%s", err, tail, out)
	}
	for _, want := range []string{
		scenario.DemoContosoTenant + "\n", // token --query tenant -o tsv
		"exit 1",                          // wingtip
		"no problems: Entra ID would accept this assertion", // decode
		`"customKeyIdentifier"`,                             // cert export --format keycredential
		"accepted",                                          // cert status, cert roll
		"ok\n",                                              // /healthz
		`"tenant_id":"` + emuhook.DemoNorthwindTenant + `"`,            // the proxy's token API
		scenario.DemoContosoTenant + "\n" + emuhook.DemoFabrikamTenant, // demo
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.ToLower(out), "accesstoken") { // token -o table (a key/value row or az's AccessToken header)
		t.Errorf("the walk-through's output lacks the token table:\n%s", out)
	}
	for _, bad := range []string{"exit 2", "exit 3"} { // a "|| echo" line that failed for another reason than the one shown
		if strings.Contains(out, bad) {
			t.Errorf("a walk-through line ended with %q:\n%s\nstderr:\n%s", bad, out, errs)
		}
	}
	// The walk-through teaches the current flags: no hidden alias (such as
	// --secret-file or --name) may appear in it, so none warns.
	if strings.Contains(errs, " is deprecated") {
		t.Errorf("the walk-through uses a deprecated flag spelling:\n%s", errs)
	}
	// Nothing emulate printed makes a later command warn (kvassert proxy
	// warned about an exported IDENTITY_ENDPOINT).
	for _, l := range strings.Split(errs, "\n") {
		if strings.HasPrefix(l, "warning: ") || strings.Contains(l, "level=WARN") {
			t.Errorf("a walk-through command warns: %s", l)
		}
	}
	if jwtPattern.MatchString(errs) || strings.Contains(errs, emuhook.DemoWorkloadSecret) {
		t.Errorf("the walk-through wrote a token or secret to stderr:\n%s", errs)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "kvassert.bash")); err != nil || !bytes.Contains(data, []byte("kvassert")) {
		t.Errorf("completion script: %v", err)
	}
}
