package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/rotation"
)

// rollFlags are what "cert status" and "cert roll" need: the vault
// certificate, the app (client ID, home tenant) and its object ID.
type rollFlags struct {
	vc          vaultCertFlags
	app         appFlags
	appObjectID string
}

func (f *rollFlags) register(cmd *cobra.Command) {
	f.vc.register(cmd, false)
	f.app.register(cmd, "the app's home tenant (ID or domain)")
	fs := cmd.Flags()
	fs.StringVar(&f.appObjectID, "app-object-id", "", "the app registration's Object ID (not its client ID)")
	bindEnv(cmd, fs, "app-object-id", "KVASSERT_APP_OBJECT_ID")
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
	case !kvassert.ValidClientID(f.appObjectID):
		return usageError(fmt.Sprintf("%s %q is not a GUID", a.flagName("app-object-id"), truncate(f.appObjectID, 60)), "use the Object ID shown on the app registration's overview page")
	}
	return nil
}

// roller builds a rotation.Roller from the flags, over the CLI's clients.
func (f *rollFlags) roller(a *App, cfg rotation.Config) (*rotation.Roller, error) {
	if err := a.requireAzure(); err != nil {
		return nil, err
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	cfg.VaultURL, cfg.Certificate, cfg.VaultCredential = f.vc.vault, f.vc.name, cred
	cfg.VaultOptions = keyvault.Options{ClientOptions: a.ClientOptions(), AllowLoopback: a.allowLoopbackVault()}
	cfg.TenantID, cfg.ClientID, cfg.AppObjectID = f.app.tenant, f.app.clientID, f.appObjectID
	cfg.ClientOptions = a.ClientOptions()
	cfg.Logger = a.Logger
	r, err := rotation.New(cfg)
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
		Short: "Show every version of the certificate: validity, registered, accepted, active",
		Long: `Show the vault's versions of the certificate, newest first: thumbprint, validity
and days left, whether Entra accepts it (a token request in the home tenant signed
with that version: the ground truth, no Graph permission needed), which one is
active (the newest accepted), and the Graph keyId kvassert recorded when it
registered the version (in the version's tags).

Each valid version costs one keys/sign and one token request. Needs
certificates/list, certificates/get and keys/sign. Changes nothing.`,
		Example: `  kvassert cert status --vault https://myvault.vault.azure.net/ --name app-auth \
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
	r, err := c.f.roller(a, rotation.Config{})
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
		rows = append(rows, record{
			{"version", s.Version.Version},
			{"thumbprint", s.Thumbprint()},
			{"notBefore", s.Certificate.NotBefore.UTC()},
			{"notAfter", s.Certificate.NotAfter.UTC()},
			{"daysLeft", daysLeft(s.Certificate, now)},
			{"valid", s.Valid},
			{"accepted", s.Acceptance.String()},
			{"active", s.Active},
			{"graphKeyId", s.GraphKeyID},
			{"removed", s.Removed},
		})
	}
	return a.printTable(rows, "table")
}

type certRollCmd struct {
	f             rollFlags
	dryRun        bool
	grace         time.Duration
	acceptTimeout time.Duration
	renewBefore   time.Duration
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
  2. if the newest valid version is not accepted: sign a proof of possession with
     an accepted version's key in Key Vault and register the newest through
     Microsoft Graph's addKey (an app needs no permission to roll its own keys);
     record the returned keyId in the version's tags;
  3. wait until Entra accepts it (--accept-timeout); the app's sources switch to it;
  4. remove the keys kvassert added for superseded versions once the newest has
     been accepted for --grace (removeKey, proof from the newest); never the last
     valid key; keys a person added are reported, not removed;
  5. with --renew-before, create the next version when the newest expires within
     that time and the vault's policy does not renew it (AutoRenew).

Exit code 0 when done or nothing to do, 1 on failure (with the Entra or Graph
error and a hint). --dry-run prints the plan and changes nothing. Needs
certificates/list, certificates/get, certificates/update (tags) and keys/sign
(certificates/create with --renew-before).`,
		Example: `  kvassert cert roll --vault https://myvault.vault.azure.net/ --name app-auth \
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
	fs.DurationVar(&c.renewBefore, "renew-before", 0, "create the next version when the newest expires within this time (0: leave it to the vault's policy)")
	return cmd
}

func (c *certRollCmd) run(ctx context.Context, a *App) error {
	if err := c.f.check(a); err != nil {
		return err
	}
	if c.grace <= 0 || c.acceptTimeout <= 0 || c.renewBefore < 0 {
		return usageError("--grace and --accept-timeout must be positive, --renew-before not negative", "e.g. --grace 168h --accept-timeout 10m")
	}
	r, err := c.f.roller(a, rotation.Config{DryRun: c.dryRun, Grace: c.grace, AcceptTimeout: c.acceptTimeout, RenewBefore: c.renewBefore})
	if err != nil {
		return err
	}
	rep, rollErr := r.Roll(ctx)
	rows := make([]record, 0, len(rep.Steps))
	for _, s := range rep.Steps {
		rows = append(rows, record{{"action", string(s.Action)}, {"version", s.Version}, {"thumbprint", s.Thumbprint}, {"done", s.Done}, {"why", s.Why}})
	}
	if len(rows) > 0 {
		if err := a.printTable(rows, "table"); err != nil {
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
	case errors.Is(err, rotation.ErrNotAccepted):
		return &exitError{code: exitFailure, msg: doing + ": Entra did not accept the newly registered version within --accept-timeout; the previous version stays active",
			hint: "replication can take minutes: run again later (the roll resumes where it stopped)"}
	}
	var ge *rotation.GraphError
	if errors.As(err, &ge) {
		return &exitError{code: exitFailure, msg: doing + ": " + firstLine(ge.Error()), hint: ge.Hint()}
	}
	return failure(doing, err)
}
