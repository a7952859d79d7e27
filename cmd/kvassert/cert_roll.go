package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/rotation"
)

// rollFlags are what "cert status" and "cert roll" need: the vault
// certificate, the app (client ID, home tenant) and its object ID.
type rollFlags struct {
	vc               vaultCertFlags
	app              appFlags
	appObjectID      string
	registerImported bool
}

func (f *rollFlags) register(cmd *cobra.Command) {
	f.vc.register(cmd, false)
	f.app.register(cmd, "the app's home tenant (ID or domain)")
	fs := cmd.Flags()
	fs.StringVar(&f.appObjectID, "app-object-id", "", "the app registration's Object ID (not its client ID)")
	bindEnv(cmd, fs, "app-object-id", "KVASSERT_APP_OBJECT_ID")
	fs.BoolVar(&f.registerImported, "register-imported-keys", false, "also register versions whose key was imported or may be exported (by default they are skipped and reported: only keys generated in the vault, non-exportable, are registered)")
}

func (f *rollFlags) check(a *App) error {
	if err := f.vc.check(a); err != nil {
		return err
	}
	if err := f.app.checkClientID(a); err != nil {
		return err
	}
	if err := f.app.checkTenant(a); err != nil {
		return err
	}
	switch {
	case f.appObjectID == "":
		return usageError("--app-object-id is required", "give the Object ID shown on the app registration's overview page, or set KVASSERT_APP_OBJECT_ID")
	case !entraid.ValidClientID(f.appObjectID):
		return usageError(fmt.Sprintf("%s %q is not a GUID", a.flagName("app-object-id"), truncate(f.appObjectID, 60)), "use the Object ID shown on the app registration's overview page")
	}
	return objectIDIsClientID(a, f.appObjectID, f.app.clientID)
}

// objectIDIsClientID refuses an --app-object-id equal to the client ID, a
// common mix-up: Graph addresses the application object, whose ID differs
// from the client (application) ID.
func objectIDIsClientID(a *App, objectID, clientID string) error {
	if !strings.EqualFold(strings.TrimSpace(objectID), strings.TrimSpace(clientID)) {
		return nil
	}
	return usageError(fmt.Sprintf("%s %s is the app's client ID, not its application object ID", a.flagName("app-object-id"), objectID),
		fmt.Sprintf("find the object ID with: az ad app show --id %s --query id -o tsv (or the Object ID on the app registration's overview page)", clientID))
}

// roller builds a rotation.Roller from the flags, over the CLI's clients.
func (f *rollFlags) roller(a *App, opts rotation.Options) (*rotation.Roller, error) {
	if err := a.requireAzure(); err != nil {
		return nil, err
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	opts.ClientOptions, opts.AllowLoopback = a.ClientOptions(), a.allowLoopbackVault()
	opts.Logger = a.Logger
	opts.RegisterImportedKeys = f.registerImported
	app := rotation.Application{TenantID: f.app.tenant, ClientID: f.app.clientID, ObjectID: f.appObjectID}
	r, err := rotation.New(f.vc.vault, f.vc.name, cred, app, &opts)
	if err != nil {
		return nil, failure("", err)
	}
	return r, nil
}

type certStatusCmd struct{ f rollFlags }

func newCertStatusCmd(a *App) *cobra.Command {
	c := &certStatusCmd{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every version of the certificate and what a roll does with it, and why",
		Long: `Show the vault's versions of the certificate, newest first: thumbprint, validity
and days left, whether Entra accepts it (a token request in the home tenant signed
with that version: the ground truth, no Graph permission needed), which one is
active, the Graph keyId kvassert recorded when it registered the version (in the
version's tags, bound to its thumbprint), and the roll's decision with its reason:

  skipped   never registered: EC key, exportable, imported, disabled, expired, pending
  wait      not yet valid, or registered and awaiting Entra's acceptance
  register  valid and not accepted: the next roll registers it
  accepted  Entra accepts it (the active one, or superseded within the grace period)
  retired   superseded and its key is no longer on the app

Each valid version costs one keys/sign and one token request. Needs
certificates/list, certificates/get and keys/sign. Changes nothing.`,
		Example: `  kvassert cert status --vault https://myvault.vault.azure.net/ --cert app-auth \
      --client-id $APP_ID --tenant $HOME_TENANT --app-object-id $APP_OBJECT_ID`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.f.register(cmd)
	return cmd
}

func (c *certStatusCmd) run(ctx context.Context, a *App) error {
	if err := c.f.check(a); err != nil {
		return err
	}
	r, err := c.f.roller(a, rotation.Options{})
	if err != nil {
		return err
	}
	st, err := r.Status(ctx)
	if err != nil {
		return rollFailure("reading the certificate's versions", err)
	}
	now := time.Now()
	rows := make([]record, 0, len(st))
	for _, s := range st {
		var nbf, exp any
		days := 0
		if s.Certificate != nil {
			nbf, exp, days = s.Certificate.NotBefore.UTC(), s.Certificate.NotAfter.UTC(), daysLeft(s.Certificate, now)
		}
		rows = append(rows, record{
			{"version", s.Version},
			{"thumbprint", s.Thumbprint},
			{"notBefore", nbf},
			{"notAfter", exp},
			{"daysLeft", days},
			{"valid", s.Valid},
			{"accepted", acceptance(s)},
			{"active", s.Active},
			{"graphKeyId", s.GraphKeyID},
			{"removed", s.Removed},
			{"decision", string(s.Action)},
			{"reason", s.Reason},
		})
	}
	return a.printTable(rows, formatTable)
}

// acceptance is the status table's "accepted" column.
func acceptance(s rotation.VersionStatus) string {
	switch {
	case !s.Probed:
		return "not probed"
	case s.Accepted:
		return "accepted"
	}
	return "refused"
}

type certRollCmd struct {
	f             rollFlags
	dryRun        bool
	grace         time.Duration
	acceptTimeout time.Duration
	renewBefore   time.Duration
	passTimeout   time.Duration
}

func newCertRollCmd(a *App) *cobra.Command {
	c := &certRollCmd{}
	cmd := &cobra.Command{
		Use:   "roll",
		Short: "Register the newest certificate version on the app and retire superseded keys",
		Long: `Make one rotation pass, safe to re-run at any point (from a cron job, a
Kubernetes CronJob or a CI pipeline):

  1. read the vault's versions; probe which one Entra accepts (a token request
     in the home tenant: no Graph read permission needed);
  2. if the newest valid version that may be registered (RSA, generated in the
     vault, non-exportable; imported or exportable keys only with
     --register-imported-keys) is not accepted: sign a proof of possession with
     an accepted version's key in Key Vault and register the newest through
     Microsoft Graph's addKey (an app needs no permission to roll its own keys);
     record the returned keyId in the version's tags;
  3. wait until Entra accepts it (--accept-timeout); the app's sources switch to it;
  4. remove the keys of versions older than the active one once it has been
     accepted for --grace (removeKey, proof from the active version); keys are
     identified by thumbprint (Graph's list when the app may read its keys, else
     the keyId tag bound to the thumbprint); never a key whose thumbprint is the
     active, the newest or a not-yet-valid version's; after each removal the
     active version is probed again and the pass stops if Entra refuses it;
     keys a person added are reported, not removed;
  5. with --renew-before, create the next version when the active one expires
     within that time and the vault will not renew it in time (no AutoRenew, or
     AutoRenew counting from another, unusable version, or nothing registrable).

Exit code 0 when done or nothing to do, 1 on failure (with the Entra or Graph
error and a hint). --dry-run prints the plan and changes nothing. Needs
certificates/list, certificates/get, certificates/update (tags) and keys/sign
(certificates/create with --renew-before).`,
		Example: `  kvassert cert roll --vault https://myvault.vault.azure.net/ --cert app-auth \
      --client-id $APP_ID --tenant $HOME_TENANT --app-object-id $APP_OBJECT_ID --dry-run
  kvassert cert roll -n app-auth --grace 72h -o json   # with KVASSERT_* set`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.f.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the plan; change nothing")
	fs.DurationVar(&c.grace, "grace", 7*24*time.Hour, "how long a superseded key stays registered after its successor is accepted")
	fs.DurationVar(&c.acceptTimeout, "accept-timeout", 10*time.Minute, "how long to wait for Entra to accept a newly registered version")
	fs.DurationVar(&c.passTimeout, "pass-timeout", 0, "bound on the whole pass, whatever the vault or Graph do (0: twice --accept-timeout plus 10m)")
	fs.DurationVar(&c.renewBefore, "renew-before", 0, "create the next version when the active one expires within this time and the vault will not renew it in time (0: leave it to the vault's policy)")
	return cmd
}

func (c *certRollCmd) run(ctx context.Context, a *App) error {
	if err := c.f.check(a); err != nil {
		return err
	}
	if c.grace <= 0 || c.acceptTimeout <= 0 || c.renewBefore < 0 || c.passTimeout < 0 {
		return usageError("--grace and --accept-timeout must be positive, --renew-before and --pass-timeout not negative", "e.g. --grace 168h --accept-timeout 10m")
	}
	if c.passTimeout > 0 && c.passTimeout <= c.acceptTimeout {
		return usageError("--pass-timeout must be longer than --accept-timeout", "e.g. --accept-timeout 10m --pass-timeout 30m")
	}
	r, err := c.f.roller(a, rotation.Options{DryRun: c.dryRun, Grace: c.grace, AcceptTimeout: c.acceptTimeout, RenewBefore: c.renewBefore, PassTimeout: c.passTimeout})
	if err != nil {
		return err
	}
	rep, rollErr := r.Roll(ctx)
	rows := make([]record, 0, len(rep.Steps))
	for _, s := range rep.Steps {
		rows = append(rows, record{{"action", string(s.Action)}, {"version", s.Version}, {"thumbprint", s.Thumbprint}, {"keyId", s.KeyID}, {"done", s.Done}, {"why", s.Why}})
	}
	if len(rows) > 0 || a.Output != "" || a.query != nil { // data formats print [] for no step
		if err := a.printTable(rows, formatTable); err != nil {
			return err
		}
	}
	if rollErr != nil {
		return rollFailure("certificate roll", rollErr)
	}
	return nil
}

// rollFailure describes a rotation error with its hint.
func rollFailure(doing string, err error) error {
	switch {
	case errors.Is(err, rotation.ErrNoAcceptedVersion):
		return &exitError{code: exitFailure, msg: doing + ": no valid version of the certificate is accepted by Entra, so no proof of possession can be signed",
			hint: "register the newest version on the app by hand (kvassert cert export --format keycredential), then run again"}
	case errors.Is(err, rotation.ErrActiveRefused):
		return &exitError{code: exitFailure, msg: doing + ": Entra refused the active version after a superseded key was removed; the pass stopped",
			hint: "check the app's keys (kvassert cert status) and register the active version by hand if needed (kvassert cert export --format keycredential)"}
	case errors.Is(err, rotation.ErrNotAccepted):
		return &exitError{code: exitFailure, msg: doing + ": Entra did not accept the newly registered version within --accept-timeout; the previous version stays active",
			hint: "replication can take minutes: run again later (the roll resumes where it stopped)"}
	}
	var ge *graphapi.Error
	if errors.As(err, &ge) {
		return &exitError{code: exitFailure, msg: doing + ": " + firstLine(ge.Error()), hint: ge.Hint()}
	}
	return failure(doing, err)
}
