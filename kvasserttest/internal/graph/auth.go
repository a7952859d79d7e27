package graph

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// graphAppID is Microsoft Graph's application ID, also a valid token audience.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// graphHosts are the Graph hosts of the clouds; a token's audience must name
// the host the request came to (the public cloud's on a loopback address).
var graphHosts = []string{"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}

// IsGraphHost reports whether host (without port) is a Microsoft Graph host.
func IsGraphHost(host string) bool {
	return slices.ContainsFunc(graphHosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// authenticate checks the bearer token: issued by the emulator's token
// service, in its lifetime, for Graph. It never echoes the token.
func (g *Graph) authenticate(r *http.Request) (*emu.AccessClaims, *graphError) {
	h := r.Header.Get("Authorization")
	scheme, raw, ok := strings.Cut(h, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, invalidToken("Access token is empty.")
	}
	host := hostOf(r.Host)
	resource := "https://graph.microsoft.com"
	if IsGraphHost(host) {
		resource = "https://" + strings.ToLower(host)
	}
	c, err := g.auth.Verify(raw, resource, graphAppID)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, emu.ErrTokenExpired):
		return nil, invalidToken("Lifetime validation failed, the token is expired.")
	case c == nil:
		return nil, invalidToken("Access token validation failure. Invalid signature or not a token of this directory.")
	case strings.Contains(err.Error(), "audience"):
		return nil, invalidToken("Access token validation failure. Invalid audience.")
	default:
		return nil, invalidToken("Lifetime validation failed, the token is not yet valid.")
	}
}

// Application permissions (app roles) that let an app read, or write, any
// application object.
var (
	readRoles  = []string{"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	writeRoles = []string{"Application.ReadWrite.All", "Directory.ReadWrite.All"}
)

func hasAnyRole(c *emu.AccessClaims, roles []string) bool {
	return slices.ContainsFunc(c.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

// callerIs reports whether the token was issued to the app itself.
func callerIs(c *emu.AccessClaims, clientID string) bool {
	id := c.AppID
	if id == "" {
		id = c.Azp
	}
	return strings.EqualFold(id, clientID)
}
