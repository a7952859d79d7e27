package fleet

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

func TestEntryBindsEveryPartOfTheKey(t *testing.T) {
	ring := mustRing(t, mustKey(t, "k1", 1))
	base := normalize(testKey(tenantN(1)))
	tok := azcore.AccessToken{Token: "secret-token", ExpiresOn: time.Now().Add(time.Hour).Truncate(time.Millisecond)}
	entry := ring.seal(encodeToken(tok, "e1"), adFor(base))
	pt, err := ring.open(entry, adFor(base))
	if err != nil {
		t.Fatal(err)
	}
	got, epoch, ok := decodeToken(pt)
	if !ok || got.Token != tok.Token || !got.ExpiresOn.Equal(tok.ExpiresOn) || epoch != "e1" {
		t.Fatalf("round trip: %+v", got)
	}
	if bytes.Contains(entry, []byte("secret-token")) {
		t.Fatal("the entry holds the token in clear")
	}
	others := []func() (string, []byte){
		func() (string, []byte) { k := base; k.ClientID = "other"; return "client ID", adFor(k)("k1") },
		func() (string, []byte) {
			k := base
			k.Authority = "login.chinacloudapi.cn"
			return "authority", adFor(k)("k1")
		},
		func() (string, []byte) { k := base; k.Tenant = tenantN(2); return "tenant", adFor(k)("k1") },
		func() (string, []byte) {
			k := base
			k.Scope = "https://vault.azure.net/.default"
			return "scope", adFor(k)("k1")
		},
		func() (string, []byte) { k := base; k.Claims = "{}"; return "claims", adFor(k)("k1") },
		func() (string, []byte) { k := base; k.CAE = true; return "CAE", adFor(k)("k1") },
		func() (string, []byte) { return "key ID", adFor(base)("k2") },
	}
	for _, o := range others {
		name, ad := o()
		if _, err := ring.open(entry, func(string) []byte { return ad }); err == nil {
			t.Errorf("an entry opened with another %s", name)
		}
	}
	// Truncations and bit flips anywhere are rejected.
	for i := range entry {
		bad := bytes.Clone(entry)
		bad[i] ^= 0x40
		if _, err := ring.open(bad, adFor(base)); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
		if _, err := ring.open(entry[:i], adFor(base)); err == nil {
			t.Fatalf("truncation to %d bytes accepted", i)
		}
	}
}

func TestKeyringRotationAndWrongKey(t *testing.T) {
	k1, k2 := mustKey(t, "k1", 1), mustKey(t, "k2", 2)
	old := mustRing(t, k1)
	rotated := mustRing(t, k2, k1)
	onlyNew := mustRing(t, k2)
	wrong := mustRing(t, mustKey(t, "k1", 9)) // same ID, another secret
	ad := adFor(normalize(testKey(tenantN(1))))
	e1 := old.seal([]byte("0123456789abcdefpayload"), ad)
	if _, err := rotated.open(e1, ad); err != nil {
		t.Fatalf("rotated ring cannot read the old key's entry: %v", err)
	}
	if _, err := onlyNew.open(e1, ad); err == nil {
		t.Fatal("a ring without k1 read k1's entry")
	}
	if _, err := wrong.open(e1, ad); err == nil {
		t.Fatal("a different secret under the same ID read the entry")
	}
	e2 := rotated.seal([]byte("0123456789abcdefpayload"), ad)
	if e2[1] != 2 || string(e2[2:4]) != "k2" {
		t.Fatalf("rotated ring does not encrypt with k2: % x", e2[:4])
	}
	if _, err := newKeyring(k1, mustKey(t, "k1", 3)); err == nil {
		t.Fatal("duplicate key IDs accepted")
	}
}

func TestKeysNeverPrintTheirSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{0xAB}, KeySize)
	k, err := NewKey("k1", secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, "\xab") {
			t.Fatalf("key printed its secret: %q", s)
		}
	}
}

// TestKeySources: a base64 key is the same key as its bytes; bad keys are
// refused without showing the secret. (The environment and file readers
// moved to cmd/kvassert: TestTokenCacheKeySources.)
func TestKeySources(t *testing.T) {
	const b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 x 0x01
	ad := adFor(normalize(testKey(tenantN(1))))
	entry := mustRing(t, mustKey(t, "k1", 1)).seal([]byte("0123456789abcdefxx"), ad)
	for _, enc := range []string{b64, " " + strings.TrimRight(b64, "=") + "\n"} {
		k, err := KeyFromBase64("k1", enc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mustRing(t, k).open(entry, ad); err != nil {
			t.Fatal("the base64 key differs from the same bytes")
		}
	}
	for name, f := range map[string]func() error{
		"not base64":  func() error { _, err := KeyFromBase64("k1", "not base64!"); return err },
		"16 bytes":    func() error { _, err := KeyFromBase64("k1", "AQEBAQEBAQEBAQEBAQEBAQ=="); return err },
		"bad ID":      func() error { _, err := KeyFromBase64("k 1", b64); return err },
		"nil active":  func() error { _, err := newKeyring(nil); return err },
		"long key ID": func() error { _, err := NewKey(strings.Repeat("a", 33), make([]byte, 32)); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), b64) {
			t.Errorf("%s: error shows the key", name)
		}
	}
}

func TestKeysForRefusesUnnameableApps(t *testing.T) {
	for _, k := range []struct{ id, auth string }{{"", "login.microsoftonline.com"}, {"a{b}", "login.microsoftonline.com"}, {testClientID, ""}, {testClientID, "host with space"}} {
		key := testKey(tenantN(1))
		key.ClientID, key.Authority = k.id, k.auth
		if _, err := keysFor(DefaultPrefix, testNameKey, key); err == nil {
			t.Errorf("%q @ %q accepted", k.id, k.auth)
		}
	}
	a, _ := keysFor(DefaultPrefix, testNameKey, testKey(tenantN(1)))
	upper := testKey(strings.ToUpper(tenantN(1)))
	upper.Authority = "https://LOGIN.microsoftonline.com/"
	b, _ := keysFor(DefaultPrefix, testNameKey, upper)
	if a.value != b.value {
		t.Fatalf("case and URL form change the name: %q vs %q", a.value, b.value)
	}
}
