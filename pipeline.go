package kvassert

// This file adapts MSAL's HTTP client to an azcore pipeline.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/obs"
)

// pipelineHTTP sends MSAL's requests through an azcore pipeline (retries,
// telemetry, the configured transport). It implements MSAL's HTTPClient.
type pipelineHTTP struct {
	client          *azcore.Client
	deriveDiscovery bool
	host            string // authority host, e.g. login.microsoftonline.com
	tel             *obs.Credential
}

func (p *pipelineHTTP) Do(r *http.Request) (*http.Response, error) {
	if p.deriveDiscovery {
		if resp, ok := p.openIDConfiguration(r); ok {
			return resp, nil
		}
	}
	ctx := r.Context()
	if r.Method == http.MethodPost {
		// MSAL POSTs only to the token endpoint.
		var end func(error)
		ctx, end = p.tel.StartTokenRequest(ctx)
		resp, err := p.send(ctx, r)
		end(tokenRequestError(resp, err))
		recordAnswer(ctx, resp)
		return resp, err
	}
	resp, err := p.send(ctx, r)
	recordAnswer(ctx, resp)
	return resp, err
}

// send sends r through the pipeline, in ctx.
func (p *pipelineHTTP) send(ctx context.Context, r *http.Request) (*http.Response, error) {
	req, err := runtime.NewRequest(ctx, r.Method, r.URL.String())
	if err != nil {
		return nil, err
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(b)), r.Header.Get("Content-Type")); err != nil {
			return nil, err
		}
	}
	h := req.Raw().Header
	for k, vs := range r.Header {
		if _, set := h[k]; !set {
			h[k] = append([]string(nil), vs...)
		}
	}
	return p.client.Pipeline().Do(req)
}

func (p *pipelineHTTP) CloseIdleConnections() {}

// openIDConfiguration answers MSAL's GET of
// https://{host}/{tenant}/v2.0/.well-known/openid-configuration with the
// three fields MSAL reads, laid out as Entra documents them for every
// tenant. The issuer host is the authority host, which is what MSAL checks.
func (p *pipelineHTTP) openIDConfiguration(r *http.Request) (*http.Response, bool) {
	if r.Method != http.MethodGet || r.URL == nil || !strings.EqualFold(r.URL.Host, p.host) || r.URL.RawQuery != "" {
		return nil, false
	}
	tenant, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/v2.0/.well-known/openid-configuration")
	if !ok || !entraid.ValidTenant(tenant) {
		return nil, false
	}
	base := "https://" + p.host + "/" + tenant
	body, _ := json.Marshal(map[string]string{
		"token_endpoint":         base + "/oauth2/v2.0/token",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"issuer":                 base + "/v2.0",
	})
	return &http.Response{
		StatusCode:    http.StatusOK,
		Status:        "200 OK",
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}, true
}
