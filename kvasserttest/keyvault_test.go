package kvasserttest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/crypto/pkcs12"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/vault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// kvEnv is the demo scenario's emulator with real SDK clients for the
// workload app (client secret credential through the Entra emulator).
type kvEnv struct {
	t    *testing.T
	e    *Emulator
	v    *vault.Vault
	cred azcore.TokenCredential
}

func newKVEnv(t *testing.T) *kvEnv {
	t.Helper()
	e := NewTB(t, scenario.Demo(), nil)
	cred, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.vault(scenario.DemoVault)
	if err != nil {
		t.Fatal(err)
	}
	return &kvEnv{t: t, e: e, v: v, cred: cred}
}

func (k *kvEnv) opts(retries int) azcore.ClientOptions {
	o := k.e.ClientOptions()
	o.Retry = policy.RetryOptions{MaxRetries: int32(retries), RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 2 * time.Second}
	return o
}

func (k *kvEnv) keys(cred azcore.TokenCredential, retries int) *azkeys.Client {
	c, err := azkeys.NewClient(k.e.VaultURL(scenario.DemoVault), cred, &azkeys.ClientOptions{ClientOptions: k.opts(retries)})
	if err != nil {
		k.t.Fatal(err)
	}
	return c
}

func (k *kvEnv) certs() *azcertificates.Client {
	c, err := azcertificates.NewClient(k.e.VaultURL(scenario.DemoVault), k.cred, &azcertificates.ClientOptions{ClientOptions: k.opts(3)})
	if err != nil {
		k.t.Fatal(err)
	}
	return c
}

func (k *kvEnv) secrets() *azsecrets.Client {
	c, err := azsecrets.NewClient(k.e.VaultURL(scenario.DemoVault), k.cred, &azsecrets.ClientOptions{ClientOptions: k.opts(3)})
	if err != nil {
		k.t.Fatal(err)
	}
	return c
}

func asResponseError(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%v is not an *azcore.ResponseError", err)
	}
	return re
}

// innerCode reads error.innererror.code from a response error's body.
func innerCode(t *testing.T, re *azcore.ResponseError) string {
	t.Helper()
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct {
			Inner struct{ Code string } `json:"innererror"`
		}
	}
	json.Unmarshal(body, &e) //nolint:errcheck // checked by the caller's comparison
	return e.Error.Inner.Code
}

func digestFor(h crypto.Hash, msg string) []byte {
	hh := h.New()
	hh.Write([]byte(msg))
	return hh.Sum(nil)
}

var algHash = map[azkeys.SignatureAlgorithm]crypto.Hash{
	"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
	"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512,
	"ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512,
}

// verifyLocally checks a Key Vault signature with crypto/rsa and crypto/ecdsa.
func verifyLocally(pub crypto.PublicKey, alg azkeys.SignatureAlgorithm, digest, sig []byte) error {
	h := algHash[alg]
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(string(alg), "PS") {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig)
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		if !ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			return errors.New("ecdsa: invalid signature")
		}
		return nil
	}
	return errors.New("unsupported key")
}

// jwkPublicKey builds a public key from an azkeys JSON Web Key.
func jwkPublicKey(t *testing.T, k *azkeys.JSONWebKey) crypto.PublicKey {
	t.Helper()
	switch *k.Kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		return &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		var crv = map[azkeys.CurveName]string{azkeys.CurveNameP256: "P-256", azkeys.CurveNameP384: "P-384", azkeys.CurveNameP521: "P-521"}[*k.Crv]
		pub, err := ecdsa.ParseUncompressedPublicKey(curveOf(crv), append([]byte{4}, append(k.X, k.Y...)...))
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	t.Fatalf("unexpected kty %s", *k.Kty)
	return nil
}

func TestKeyVaultKeysWithRealSDK(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	if err := k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create", "keys/verify", "keys/list"); err != nil {
		t.Fatal(err)
	}
	kc := k.keys(k.cred, 3)
	shapes := map[string]struct {
		p    azkeys.CreateKeyParameters
		algs []azkeys.SignatureAlgorithm
	}{
		"rsa-key": {azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))},
			[]azkeys.SignatureAlgorithm{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		"ec-key": {azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)},
			[]azkeys.SignatureAlgorithm{"ES256"}},
		"ec384-key": {azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP384)},
			[]azkeys.SignatureAlgorithm{"ES384"}},
		"ec521-key": {azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP521)},
			[]azkeys.SignatureAlgorithm{"ES512"}},
	}
	for name, s := range shapes {
		first, err := kc.CreateKey(ctx, name, s.p, nil)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		second, err := kc.CreateKey(ctx, name, s.p, nil)
		if err != nil {
			t.Fatal(err)
		}
		latest, err := kc.GetKey(ctx, name, "", nil)
		if err != nil || *latest.Key.KID != *second.Key.KID {
			t.Fatalf("%s latest: %v", name, err)
		}
		old, err := kc.GetKey(ctx, name, first.Key.KID.Version(), nil)
		if err != nil || *old.Key.KID != *first.Key.KID {
			t.Fatalf("%s versioned get: %v", name, err)
		}
		wantKid := k.e.VaultURL(scenario.DemoVault) + "keys/" + name + "/" + first.Key.KID.Version()
		if string(*first.Key.KID) != wantKid {
			t.Fatalf("kid %s, want %s", *first.Key.KID, wantKid)
		}
		n := 0
		for pager := kc.NewListKeyPropertiesVersionsPager(name, nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page.Value)
		}
		if n != 2 {
			t.Fatalf("%s: %d versions, want 2", name, n)
		}
		pub := jwkPublicKey(t, latest.Key)
		for _, alg := range s.algs {
			digest := digestFor(algHash[alg], "kvassert "+string(alg))
			res, err := kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest}, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", name, alg, err)
			}
			if *res.KID != *second.Key.KID {
				t.Fatalf("sign kid %s", *res.KID)
			}
			if err := verifyLocally(pub, alg, digest, res.Result); err != nil {
				t.Fatalf("%s %s: local verification: %v", name, alg, err)
			}
			ok, err := kc.Verify(ctx, name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: digest, Signature: res.Result}, nil)
			if err != nil || !*ok.Value {
				t.Fatalf("%s %s: vault verify %v %v", name, alg, ok.Value, err)
			}
			// The old version's key does not verify the new version's signature.
			ok, err = kc.Verify(ctx, name, first.Key.KID.Version(), azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: digest, Signature: res.Result}, nil)
			if err != nil || *ok.Value {
				t.Fatalf("%s %s: verify with the other version %v %v", name, alg, ok.Value, err)
			}
			_, err = kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest[:20]}, nil)
			if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
				t.Fatalf("%s %s: wrong digest length: %v", name, alg, err)
			}
		}
	}
	_, err := kc.GetKey(ctx, "no-such-key", "", nil)
	if re := asResponseError(t, err); re.StatusCode != 404 || re.ErrorCode != "KeyNotFound" || !strings.Contains(err.Error(), "A key with (name/id) no-such-key was not found in this key vault") {
		t.Fatalf("missing key: %v", err)
	}
	if n := k.e.Count(Op("keyvault/challenge")); n != 1 {
		t.Fatalf("%d challenges for one client, want 1", n)
	}
}

func TestKeyVaultSignWithDemoCertificate(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	got, err := k.certs().GetCertificate(ctx, scenario.DemoCertificate, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := k.e.certificateDER(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil || !bytes.Equal(der, got.CER) {
		t.Fatalf("CertificateDER differs from the served certificate: %v", err)
	}
	digest := digestFor(crypto.SHA256, "header.claims")
	res, err := k.keys(k.cred, 3).Sign(ctx, got.KID.Name(), got.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyLocally(cert.PublicKey, azkeys.SignatureAlgorithmPS256, digest, res.Result); err != nil {
		t.Fatalf("signature does not verify with the certificate: %v", err)
	}
}

func TestKeyVaultForbiddenByRBAC(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	if err := k.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/sign"); err != nil {
		t.Fatal(err)
	}
	_, err := k.keys(k.cred, 3).Sign(ctx, "signing", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digestFor(crypto.SHA256, "x")}, nil)
	re := asResponseError(t, err)
	if re.StatusCode != 403 || re.ErrorCode != "Forbidden" || innerCode(t, re) != "ForbiddenByRbac" {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"appid=" + emuhook.DemoWorkloadClientID, "Action: 'Microsoft.KeyVault/vaults/keys/sign/action'", "Caller is not authorized to perform action on resource."} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("403 message lacks %q", want)
		}
	}
	if err := k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/sign"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.keys(k.cred, 3).Sign(ctx, "signing", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digestFor(crypto.SHA256, "x")}, nil); err != nil {
		t.Fatalf("after grant: %v", err)
	}
}

func TestKeyVaultRetriesAndLimits(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	params := azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digestFor(crypto.SHA256, "retry")}
	kc := k.keys(k.cred, 3)
	if _, err := kc.Sign(ctx, "signing", "", params, nil); err != nil { // challenge and token done
		t.Fatal(err)
	}

	t.Run("429 with Retry-After is retried", func(t *testing.T) {
		k.e.ResetCounts()
		k.e.InjectFault(OpKeySign, Fault{Status: 429, RetryAfter: time.Second, Times: 1})
		start := time.Now()
		if _, err := kc.Sign(ctx, "signing", "", params, nil); err != nil {
			t.Fatal(err)
		}
		if n := k.e.Count(OpKeySign); n != 2 {
			t.Fatalf("%d sign requests, want 2", n)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Fatalf("the SDK retried after %v, before Retry-After", d)
		}
	})

	t.Run("dropped connection", func(t *testing.T) {
		k.e.ResetCounts()
		k.e.InjectFault(OpKeySign, Fault{Drop: true, Times: 1})
		_, err := k.keys(k.cred, -1).Sign(ctx, "signing", "", params, nil)
		var re *azcore.ResponseError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("want a transport error, got %v", err)
		}
		k.e.InjectFault(OpKeySign, Fault{Drop: true, Times: 1})
		if _, err := kc.Sign(ctx, "signing", "", params, nil); err != nil {
			t.Fatalf("the retry after a dropped connection failed: %v", err)
		}
	})

	t.Run("sign limit answers 429 without Retry-After", func(t *testing.T) {
		if err := k.e.SetSignLimit(scenario.DemoVault, 3, time.Minute); err != nil {
			t.Fatal(err)
		}
		defer k.e.SetSignLimit(scenario.DemoVault, 0, 0) //nolint:errcheck // known vault
		noRetry := k.keys(k.cred, -1)
		ok, throttled := 0, 0
		for range 6 {
			_, err := noRetry.Sign(ctx, "signing", "", params, nil)
			if err == nil {
				ok++
				continue
			}
			re := asResponseError(t, err)
			if re.StatusCode != 429 || re.ErrorCode != "Throttled" || re.RawResponse.Header.Get("Retry-After") != "" || !strings.Contains(err.Error(), "VaultRequestTypeLimitReached") {
				t.Fatalf("throttled answer: %v", err)
			}
			throttled++
		}
		if ok != 3 || throttled != 3 {
			t.Fatalf("%d ok, %d throttled; want 3 and 3", ok, throttled)
		}
	})
}

// staticCred hands out one fixed token.
type staticCred struct{ token string }

func (s staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: s.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// scopeCred asks its inner credential for other scopes.
type scopeCred struct {
	inner  azcore.TokenCredential
	scopes []string
}

func (s scopeCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	o.Scopes = s.scopes
	return s.inner.GetToken(ctx, o)
}

func TestKeyVaultRejectsBadTokens(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	now := time.Now().Unix()
	base := emu.AccessClaims{Aud: "https://vault.azure.net", Tid: scenario.DemoHomeTenant, AppID: emuhook.DemoWorkloadClientID,
		Iss: "https://sts.windows.net/" + scenario.DemoHomeTenant + "/", Iat: now, Nbf: now, Exp: now + 3600}
	wrongTenant := base
	wrongTenant.Tid, wrongTenant.Iss = scenario.DemoContosoTenant, "https://sts.windows.net/"+scenario.DemoContosoTenant+"/"
	issue := func(c emu.AccessClaims) azcore.TokenCredential {
		tok, err := k.e.auth.Issue(c)
		if err != nil {
			t.Fatal(err)
		}
		return staticCred{tok}
	}
	cases := map[string]struct {
		cred azcore.TokenCredential
		msg  string
	}{
		"wrong tenant":   {issue(wrongTenant), "AKV10032: Invalid issuer"},
		"wrong audience": {scopeCred{k.cred, []string{"https://management.azure.com/.default"}}, "AKV10022: Invalid audience"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := k.keys(c.cred, 0).GetKey(ctx, "signing", "", nil)
			re := asResponseError(t, err)
			if re.StatusCode != 401 || re.ErrorCode != "Unauthorized" || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v", err)
			}
			if re.RawResponse.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without a challenge")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		kc := k.keys(k.cred, 0)
		if _, err := kc.GetKey(ctx, "signing", "", nil); err != nil {
			t.Fatal(err)
		}
		k.e.SetClock(func() time.Time { return time.Now().Add(3 * time.Hour) })
		defer k.e.SetClock(nil)
		_, err := kc.GetKey(ctx, "signing", "", nil)
		re := asResponseError(t, err)
		if re.StatusCode != 401 || !strings.Contains(err.Error(), "TokenExpired") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestKeyVaultCertificatesWithRealSDK(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	if err := k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "secrets/get"); err != nil {
		t.Fatal(err)
	}
	k.v.SetPendingPolls(1)
	cc := k.certs()
	pol := azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=exportable app")},
		KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(true), KeyType: to.Ptr(azcertificates.KeyTypeRSA), KeySize: to.Ptr(int32(2048))},
	}
	created, err := cc.CreateCertificate(ctx, "exportable", azcertificates.CreateCertificateParameters{CertificatePolicy: &pol}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *created.Status != "inProgress" {
		t.Fatalf("create status %s", *created.Status)
	}
	var statuses []string
	for range 5 {
		op, err := cc.GetCertificateOperation(ctx, "exportable", nil)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, *op.Status)
		if *op.Status == "completed" {
			break
		}
	}
	if strings.Join(statuses, ",") != "inProgress,completed" {
		t.Fatalf("statuses %v", statuses)
	}
	got, err := cc.GetCertificate(ctx, "exportable", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(got.CER)
	if base64.RawURLEncoding.EncodeToString(got.X509Thumbprint) != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatal("x5t is not the SHA-1 of cer")
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := k.keys(k.cred, 3).GetKey(ctx, got.KID.Name(), got.KID.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.PublicKey.(*rsa.PublicKey).Equal(jwkPublicKey(t, key.Key)) {
		t.Fatal("the certificate's public key is not the kid key")
	}

	// The exportable certificate's secret holds a key matching the certificate.
	sec, err := k.secrets().GetSecret(ctx, got.SID.Name(), got.SID.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := base64.StdEncoding.DecodeString(*sec.Value)
	if err != nil {
		t.Fatal(err)
	}
	priv, pcert, err := pkcs12.Decode(pfx, "")
	if err != nil {
		t.Fatalf("exportable secret: %v", err)
	}
	if !bytes.Equal(pcert.Raw, got.CER) || !priv.(*rsa.PrivateKey).PublicKey.Equal(cert.PublicKey) {
		t.Fatal("the secret's key does not match the certificate")
	}
	if *sec.ContentType != "application/x-pkcs12" || sec.KID == nil || !*sec.Managed {
		t.Fatalf("secret properties %v %v %v", sec.ContentType, sec.KID, sec.Managed)
	}

	// The demo certificate is not exportable: its secret has no key.
	sec, err = k.secrets().GetSecret(ctx, scenario.DemoCertificate, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, _ = base64.StdEncoding.DecodeString(*sec.Value)
	if _, _, err := pkcs12.Decode(pfx, ""); err == nil {
		t.Fatal("the non-exportable certificate's secret decodes with a private key")
	}
	blocks, err := pkcs12.ToPEM(pfx, "")
	if err != nil || len(blocks) != 1 || blocks[0].Type != "CERTIFICATE" {
		t.Fatalf("non-exportable secret: %d blocks, %v", len(blocks), err)
	}

	// Policy get and update, then a second version.
	p, err := cc.GetCertificatePolicy(ctx, "exportable", nil)
	if err != nil || *p.X509CertificateProperties.Subject != "CN=exportable app" || *p.X509CertificateProperties.ValidityInMonths != 12 {
		t.Fatalf("policy %v", err)
	}
	up, err := cc.UpdateCertificatePolicy(ctx, "exportable", azcertificates.CertificatePolicy{
		X509CertificateProperties: &azcertificates.X509CertificateProperties{ValidityInMonths: to.Ptr(int32(3))},
	}, nil)
	if err != nil || *up.X509CertificateProperties.ValidityInMonths != 3 || *up.X509CertificateProperties.Subject != "CN=exportable app" {
		t.Fatalf("policy update %v", err)
	}
	k.v.SetPendingPolls(0)
	if _, err := cc.CreateCertificate(ctx, "exportable", azcertificates.CreateCertificateParameters{}, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	for pager := cc.NewListCertificatePropertiesVersionsPager("exportable", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 2 {
		t.Fatalf("%d versions, want 2", n)
	}

	// Import: the PFX of the exportable secret, and a PEM with its key.
	imp, err := cc.ImportCertificate(ctx, "imported-pfx", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(base64.StdEncoding.EncodeToString(pfx2(t, k, got)))}, nil)
	if err != nil || !bytes.Equal(imp.CER, got.CER) || *imp.Policy.IssuerParameters.Name != "Unknown" {
		t.Fatalf("PFX import: %v", err)
	}
	pemValue := pemOf(t, priv.(*rsa.PrivateKey), got.CER)
	imp, err = cc.ImportCertificate(ctx, "imported-pem", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(pemValue),
		CertificatePolicy:        &azcertificates.CertificatePolicy{SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")}},
	}, nil)
	if err != nil || !bytes.Equal(imp.CER, got.CER) {
		t.Fatalf("PEM import: %v", err)
	}
	_, err = cc.ImportCertificate(ctx, "imported-bad", azcertificates.ImportCertificateParameters{Base64EncodedCertificate: to.Ptr(strings.Split(pemValue, "-----END PRIVATE KEY-----\n")[1])}, nil)
	if re := asResponseError(t, err); re.StatusCode != 400 {
		t.Fatalf("import without a key: %v", err)
	}
	_, err = cc.GetCertificate(ctx, "no-such-cert", "", nil)
	if re := asResponseError(t, err); re.StatusCode != 404 || re.ErrorCode != "CertificateNotFound" {
		t.Fatalf("missing certificate: %v", err)
	}
}

// pfx2 reads the exportable certificate's PKCS#12 again.
func pfx2(t *testing.T, k *kvEnv, got azcertificates.GetCertificateResponse) []byte {
	t.Helper()
	sec, err := k.secrets().GetSecret(context.Background(), got.SID.Name(), got.SID.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := base64.StdEncoding.DecodeString(*sec.Value)
	if err != nil {
		t.Fatal(err)
	}
	return pfx
}

func curveOf(name string) elliptic.Curve {
	switch name {
	case "P-384":
		return elliptic.P384()
	case "P-521":
		return elliptic.P521()
	}
	return elliptic.P256()
}

// pemOf is a PEM certificate import value: PKCS #8 key, then certificate.
func pemOf(t *testing.T, priv *rsa.PrivateKey, der []byte) string {
	t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
