package emuhook

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var (
	consentAction = regexp.MustCompile(`<form method="POST" action="([^"]*)"`)
	consentHidden = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)
	consentError  = regexp.MustCompile(`<span id="error-code">(AADSTS[0-9]+)</span>`)
)

// ConsentError is the error page of the emulated admin-consent endpoint.
type ConsentError struct {
	// Status is the HTTP status (400, or 405).
	Status int
	// Code is "AADSTS700016" etc.
	Code string
}

func (e *ConsentError) Error() string {
	return fmt.Sprintf("admin consent page: HTTP %d %s", e.Status, e.Code)
}

// SubmitConsent does what an administrator does on the emulated admin-consent
// page at pageURL (a v2 adminconsent URL) without a browser: it GETs the page
// with client (an emulator's Client), then posts its form with the button
// "accept" or "cancel", picking tenant (an ID; "" keeps the preselected one)
// on /organizations and /common. It returns the redirect the emulator
// answers with (redirect_uri?admin_consent=True&tenant=... or
// ?error=access_denied...), without following it. An error page is a
// *ConsentError.
func SubmitConsent(ctx context.Context, client *http.Client, pageURL, button, tenant string) (*url.URL, error) {
	if button != "accept" && button != "cancel" {
		return nil, fmt.Errorf("emuhook: button %q is not accept or cancel", button)
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	page, err := url.Parse(pageURL)
	if err != nil {
		return nil, err
	}
	body, status, err := consentDo(ctx, &c, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, consentErrorOf(status, body)
	}
	m := consentAction.FindStringSubmatch(body)
	if m == nil {
		return nil, errors.New("emuhook: the consent page holds no form")
	}
	form := url.Values{"action": {button}}
	for _, h := range consentHidden.FindAllStringSubmatch(body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	if tenant != "" {
		form.Set("tenant", tenant)
	} else if sel := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(body); sel != nil {
		form.Set("tenant", sel[1])
	}
	action := page.Scheme + "://" + page.Host + html.UnescapeString(m[1])
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, consentErrorOf(resp.StatusCode, string(b))
	}
	return url.Parse(resp.Header.Get("Location"))
}

func consentDo(ctx context.Context, c *http.Client, method, u string, body io.Reader) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), resp.StatusCode, err
}

func consentErrorOf(status int, body string) error {
	e := &ConsentError{Status: status}
	if m := consentError.FindStringSubmatch(body); m != nil {
		e.Code = m[1]
	}
	return e
}
