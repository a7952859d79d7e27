package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/textutil"
)

// Environment variables kvassert reads itself (azidentity reads AZURE_* and
// IDENTITY_* on its own).
const (
	envEmulator = "KVASSERT_EMULATOR" // https://127.0.0.1:PORT of "kvassert emulate"
	envCAFile   = "KVASSERT_CA_FILE"  // the emulator's CA certificate (PEM)
	envOutput   = "KVASSERT_OUTPUT"
	envCloud    = "KVASSERT_CLOUD"
)

// Flag annotations.
const (
	annEnv   = "kvassert_env"   // environment variables that give the flag's default, in order
	annKinds = "kvassert_kinds" // the credential kinds a flag belongs to (see kindFlags)
)

// bindEnv makes the flag take its default from the first non-empty of envs
// (precedence: the flag itself, then envs in order) and says so in its help.
func bindEnv(cmd *cobra.Command, fs *pflag.FlagSet, name string, envs ...string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("bindEnv: no flag " + name) // a programming error, caught by every test run
	}
	f.Usage += " [env " + strings.Join(envs, ", ") + "]"
	_ = fs.SetAnnotation(name, annEnv, envs)
}

// kindFlags marks flags that choose one of several kinds of credential:
// kinds[i] lists the flags of kind i (a flag may belong to several). When
// flags of one kind are given on the command line, only the flags of that
// kind take defaults from the environment, so that, say, KVASSERT_VAULT does
// not clash with an explicit --cert-file. When the explicit flags fit
// several kinds, the last of them is meant; when they fit none, no flag of
// any kind is taken from the environment (the command reports the clash).
func kindFlags(fs *pflag.FlagSet, kinds ...[]string) {
	for i, names := range kinds {
		for _, n := range names {
			prev := fs.Lookup(n).Annotations[annKinds]
			_ = fs.SetAnnotation(n, annKinds, append(prev, fmt.Sprint(i)))
		}
	}
}

// applyEnv fills flags not given on the command line from the environment.
func (a *App) applyEnv(cmd *cobra.Command) error {
	fs := cmd.Flags()
	var fit []string // the kinds every explicit kind flag belongs to
	explicit := false
	fs.Visit(func(f *pflag.Flag) { // only flags set on the command line
		kinds := f.Annotations[annKinds]
		if len(kinds) == 0 {
			return
		}
		if !explicit {
			fit, explicit = slices.Clone(kinds), true
			return
		}
		fit = slices.DeleteFunc(fit, func(k string) bool { return !slices.Contains(kinds, k) })
	})
	meant := ""
	if explicit {
		meant = "none"
		if len(fit) > 0 {
			meant = slices.Max(fit)
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[annEnv]
		if err != nil || f.Changed || len(envs) == 0 {
			return
		}
		if kinds := f.Annotations[annKinds]; meant != "" && len(kinds) > 0 && !slices.Contains(kinds, meant) {
			return
		}
		for _, e := range envs {
			v := strings.TrimSpace(a.Getenv(e))
			if v == "" {
				continue
			}
			if serr := fs.Set(f.Name, v); serr != nil {
				err = usageError(fmt.Sprintf("%s (default of --%s): %v", e, f.Name, serr), "fix or unset "+e)
				return
			}
			a.flagFrom[f.Name] = e
			return
		}
	})
	return err
}

// flagName names a flag in a message: "--vault", or "KVASSERT_VAULT" when
// the value came from the environment.
func (a *App) flagName(name string) string {
	if e := a.flagFrom[name]; e != "" {
		return e
	}
	return "--" + name
}

// fromEnv reports whether the flag's value came from the environment.
func (a *App) fromEnv(name string) bool { return a.flagFrom[name] != "" }

// emulatorEnv is the emulator configuration of KVASSERT_EMULATOR.
type emulatorEnv struct {
	url, addr, caFile string
	client            *http.Client
}

// loadEmulator reads KVASSERT_EMULATOR and KVASSERT_CA_FILE. Without them,
// real Azure is used.
func (a *App) loadEmulator() error {
	raw := strings.TrimSpace(a.Getenv(envEmulator))
	caFile := strings.TrimSpace(a.Getenv(envCAFile))
	if raw == "" {
		if caFile != "" {
			a.Logger.Warn(envCAFile + " is set but " + envEmulator + " is not: using real Azure")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || strings.Trim(u.Path, "/") != "" || u.User != nil || u.RawQuery != "" {
		return usageError(fmt.Sprintf("%s=%q is not the https://127.0.0.1:PORT address of an emulator", envEmulator, truncate(raw, 100)),
			"copy the value that 'kvassert emulate' prints, or unset "+envEmulator+" to use real Azure")
	}
	if ip := net.ParseIP(u.Hostname()); !(u.Hostname() == "localhost" || ip != nil && ip.IsLoopback()) {
		return usageError(fmt.Sprintf("%s=%q is not a loopback address; the emulator only serves this machine", envEmulator, truncate(raw, 100)),
			"use the https://127.0.0.1:PORT address that 'kvassert emulate' prints")
	}
	if caFile == "" {
		return usageError(envEmulator+" is set but "+envCAFile+" is not", "set "+envCAFile+" to the CA file that 'kvassert emulate' prints (--ca-out)")
	}
	caPEM, err := readSmallFile(caFile, 1<<20)
	if err != nil {
		return &exitError{code: exitUsage, msg: envCAFile, err: err, hint: "point " + envCAFile + " at the CA file that 'kvassert emulate' wrote"}
	}
	t, err := emuhook.NewTransport(u.Host, caPEM, nil)
	if err != nil {
		return &exitError{code: exitUsage, msg: fmt.Sprintf("%s=%s", envCAFile, caFile), err: err, hint: "the file must hold the emulator's CA certificate (PEM)"}
	}
	a.emu = &emulatorEnv{url: "https://" + u.Host, addr: u.Host, caFile: caFile, client: &http.Client{Transport: t, Timeout: 2 * time.Minute}}
	return nil
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// truncate is textutil.Truncate, named short for the many flag messages of
// this package.
func truncate(s string, n int) string { return textutil.Truncate(s, n) }
