package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// demoPropagation is the emulated time Entra takes to accept a key added
// through Graph in the demo (real Entra: seconds to minutes).
const demoPropagation = 1500 * time.Millisecond

// demoRotation is the JSON report of the rotation chapter.
type demoRotation struct {
	OldVersion string   `json:"oldVersion"`
	NewVersion string   `json:"newVersion"`
	Steps      []string `json:"steps"`
	KeysBefore int      `json:"keysBefore"`
	KeysAfter  int      `json:"keysAfter"`
	Calls      calls    `json:"calls"`
	Graph      calls    `json:"graph"`
	Elapsed    string   `json:"elapsed"`
}

// rotate renews the certificate in the vault (what AutoRenew does at 80 %
// of its lifetime), then lets one roll register the new version through
// Microsoft Graph with a proof signed in Key Vault, wait for Entra to accept
// it, switch the source and retire the old key: no human step.
func (d *demo) rotate(ctx context.Context) error {
	w, st := d.w, d.st
	d.section("The vault renews the certificate; kvassert registers it, switches and retires the old one")
	src, ok := d.capture.Source.(*kvassert.KeyVaultCertificateSource)
	if !ok {
		return &exitError{code: exitFailure, msg: "demo: the source is not a Key Vault certificate source"}
	}
	old, err := rootaccess.Cache(src).Certificate(ctx)
	if err != nil {
		return failure("reading the certificate", err)
	}
	certClient, err := azcertificates.NewClient(d.vaultURL, d.kvCred, &azcertificates.ClientOptions{ClientOptions: d.opts})
	if err != nil {
		return failure("", err)
	}
	renewed, err := createCertificate(ctx, certClient, demoCertificate, certSpec{Subject: "CN=kvassert demo SaaS", ValidityMonths: 12, KeySize: 2048}, nil)
	if err != nil {
		return err
	}
	d.kv("renewed", "version "+short8(renewed.version)+st.dim(" thumbprint "+thumbprintHex(renewed.cert)+": a new key, unknown to Entra"))

	// The app may read its own keys here, so the roll can also retire the
	// first version, which a person registered (its keyId is not in the
	// vault's tags).
	if err := d.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		return failure("", err)
	}
	emuhook.Of(d.e).SetGraphPropagationDelay(demoPropagation)
	keysBefore, _ := d.e.AppKeyCredentials(scenario.DemoAppClientID)
	before := d.e.Counts()
	start := time.Now()
	r, err := rotation.New(d.vaultURL, demoCertificate, d.kvCred,
		rotation.Application{TenantID: scenario.DemoHomeTenant, ClientID: scenario.DemoAppClientID, ObjectID: scenario.DemoAppObjectID},
		&rotation.Options{
			ClientOptions: d.opts,
			Grace:         time.Nanosecond, // the demo does not wait the default week before retiring
			Source:        src,
			Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	if err != nil {
		return failure("", err)
	}
	rep, err := r.Roll(ctx)
	if err != nil {
		return failure("certificate roll", err)
	}
	took := time.Since(start)
	after := d.e.Counts()
	keysAfter, _ := d.e.AppKeyCredentials(scenario.DemoAppClientID)
	dr := demoRotation{OldVersion: old.Version, NewVersion: renewed.version, KeysBefore: len(keysBefore), KeysAfter: len(keysAfter),
		Calls: diff(after, before), Graph: graphCalls(after, before), Elapsed: shortDuration(took)}
	for _, s := range rep.Steps {
		dr.Steps = append(dr.Steps, fmt.Sprintf("%s %s: %s", s.Action, short8(s.Version), s.Why))
		fmt.Fprintf(w, "   %s %-8s %s %s\n", st.green("✓"), s.Action, short8(s.Version), st.dim(s.Why))
	}
	now, err := rootaccess.Cache(src).Certificate(ctx)
	if err != nil {
		return failure("reading the certificate", err)
	}
	if now.Version != renewed.version || rep.Active != renewed.version || len(keysAfter) != len(keysBefore) || dr.Graph[kvasserttest.OpGraphAddKey] != 1 || dr.Graph[kvasserttest.OpGraphRemoveKey] != 1 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: after the roll the source signs with %s (want %s), the app has %d keys (want %d), Graph: %s",
			short8(now.Version), short8(renewed.version), len(keysAfter), len(keysBefore), dr.Graph.graphLine())}
	}
	d.kv("signing", "version "+short8(now.Version)+st.dim(" (the source switched without a restart)"))
	d.kv("app keys", fmt.Sprintf("%d → %d → %d", len(keysBefore), len(keysBefore)+1, len(keysAfter))+st.dim(" (the new key added, the old one removed: never without a valid key)"))
	fmt.Fprintf(w, "   %s %s   %s %s   %s %s   %s\n", st.dim("Key Vault:"), dr.Calls.line(true), st.dim("Entra ID:"), dr.Calls.line(false),
		st.dim("Graph:"), dr.Graph.graphLine(), st.dim(shortDuration(took)+", including "+shortDuration(demoPropagation)+" of emulated replication"))
	d.rep.Rotation = &dr
	return nil
}

// graphCalls is the difference of the Graph counters.
func graphCalls(after, before map[kvasserttest.Op]int64) calls {
	c := calls{}
	for _, op := range []kvasserttest.Op{kvasserttest.OpGraphAddKey, kvasserttest.OpGraphRemoveKey, kvasserttest.Op("graph/applications/get")} {
		if n := after[op] - before[op]; n != 0 {
			c[op] = n
		}
	}
	return c
}

func (c calls) graphLine() string {
	return fmt.Sprintf("%d addKey, %d removeKey, %d read", c[kvasserttest.OpGraphAddKey], c[kvasserttest.OpGraphRemoveKey], c[kvasserttest.Op("graph/applications/get")])
}

func short8(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}
