package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
)

// Module paths whose linked versions "kvassert version" reports.
const (
	modMSAL   = "github.com/AzureAD/microsoft-authentication-library-for-go"
	modAzcore = "github.com/Azure/azure-sdk-for-go/sdk/azcore"
	modLib    = "github.com/kvassert/kvassert"
)

// versionInfo is what "kvassert version" prints: the release, the build's
// module version and VCS stamp, the Go version, and the versions of MSAL Go
// and azcore linked in (from the build info; "unknown" when the binary has
// none).
func versionInfo(bi *debug.BuildInfo, ok bool) record {
	r := record{{"kvassert", kvassert.Version}}
	if !ok || bi == nil {
		return append(r, field{"module", "unknown"}, field{"go", runtime.Version()}, field{"platform", runtime.GOOS + "/" + runtime.GOARCH},
			field{"msalGo", "unknown"}, field{"azcore", "unknown"})
	}
	settings := map[string]any{"vcs.revision": nil, "vcs.time": nil, "vcs.modified": nil} // null: not stamped
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
		if s.Key == "vcs.modified" {
			settings[s.Key] = s.Value == "true"
		}
	}
	dep := func(path string) string {
		for _, d := range bi.Deps {
			if d.Path != path {
				continue
			}
			if d.Replace != nil {
				if d.Replace.Version != "" {
					return d.Replace.Version
				}
				return "(replaced by " + d.Replace.Path + ")"
			}
			return d.Version
		}
		return "unknown"
	}
	r = append(r,
		field{"module", strings.TrimSpace(bi.Main.Path + " " + bi.Main.Version)},
		field{"library", dep(modLib)},
		field{"revision", settings["vcs.revision"]},
		field{"revisionTime", settings["vcs.time"]},
		field{"modified", settings["vcs.modified"]},
		field{"go", bi.GoVersion},
		field{"platform", runtime.GOOS + "/" + runtime.GOARCH},
		field{"msalGo", dep(modMSAL)},
		field{"azcore", dep(modAzcore)},
	)
	return r
}

// versionText is --version's text: the fields of versionInfo, one a line.
func versionText(r record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kvassert version %s\n", kvassert.Version)
	for _, f := range r[1:] {
		v := scalarText(f.val)
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "  %-13s %s\n", f.key, v)
	}
	return b.String()
}

func newVersionCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show kvassert's version, its build, and the MSAL Go and azcore versions linked in",
		Long: `Show the kvassert release, the module version and VCS revision the binary was
built from (with its time and whether the tree was modified), the Go version,
and the versions of MSAL Go and azcore linked in: what a bug report needs.
The default output is JSON, as "az version"; --output and --query apply.`,
		Example: `  kvassert version
  kvassert version --query revision -o tsv
  kvassert --version`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			bi, ok := debug.ReadBuildInfo()
			return a.emit(versionInfo(bi, ok), formatJSON)
		},
	}
}

// setVersionFlag gives root --version (no shorthand: -v reads as verbosity
// to kubectl users) printing versionText.
func setVersionFlag(root *cobra.Command) {
	root.Flags().Bool("version", false, "show the version and build (as 'kvassert version', in text)")
	bi, ok := debug.ReadBuildInfo()
	root.SetVersionTemplate(versionText(versionInfo(bi, ok)))
}
