package kvassert_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
)

// consentLink is the admin-consent link in a hint.
var consentLink = regexp.MustCompile(`https://[^ )]+adminconsent\?[^ )]+`)

// The admin-consent link an AADSTS700016 hint gives works as given: an
// administrator who opens it and accepts has consented, and the tenant
// then gets tokens (after ForgetTenant). Before, the hint gave the v2 link
// without the redirect_uri that endpoint requires: the page refused it
// (AADSTS900144).
func TestConsentHintLinkWorks(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tailspin := emuhook.DemoTailspinTenant
	_, err := w.Cred.GetToken(ctx, testfixture.Opts(tailspin))
	ae := authErr(t, err, 700016)
	link := consentLink.FindString(ae.Hint)
	if link == "" {
		t.Fatalf("no consent link in the hint %q", ae.Hint)
	}
	loc, err := emuhook.SubmitConsent(ctx, w.Emu.Client(), link, "accept", "")
	if err != nil {
		t.Fatalf("the hint's link %s: %v", link, err)
	}
	if q := loc.Query(); q.Get("admin_consent") != "True" || q.Get("tenant") != tailspin {
		t.Fatalf("redirect %v", loc)
	}
	if err := w.Cred.ForgetTenant(ctx, tailspin); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cred.GetToken(ctx, testfixture.Opts(tailspin)); err != nil {
		t.Fatalf("after the consent: %v", err)
	}
}
