package tenants

import (
	"html/template"
	"net/http"
)

// page is what the Handler shows the administrator: only text it wrote
// and identifiers it checked (a tenant GUID, role names from a token).
type page struct {
	Title, Message string
	Tenant         string
	OK             bool
	Resources      []ResourceReport
	Hint           string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
h1{font-size:1.4rem}.ok{color:#0a6b2d}.bad{color:#a4262c}code{font-family:ui-monospace,monospace}
table{border-collapse:collapse}td,th{padding:.25rem .75rem .25rem 0;text-align:left;vertical-align:top}</style></head>
<body><h1 id="title" class="{{if .OK}}ok{{else}}bad{{end}}">{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{with .Tenant}}<p>Tenant: <code id="tenant">{{.}}</code></p>{{end}}
{{if .Resources}}<table id="roles"><tr><th>Resource</th><th>Granted</th><th>Missing</th></tr>
{{range .Resources}}<tr><td><code>{{.Resource}}</code></td><td class="granted">{{range $i, $r := .Granted}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}}</td><td class="missing">{{range $i, $r := .Missing}}{{if $i}}, {{end}}<code>{{$r}}</code>{{end}}</td></tr>
{{end}}</table>{{end}}
{{with .Hint}}<p id="hint">{{.}}</p>{{end}}
</body></html>
`))

// writePage writes p with the headers a page of the redirect URI needs:
// no caching, no referrer (the URL held a state), no script.
func writePage(w http.ResponseWriter, status int, p page) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

// refusalPage words Entra's refusal; only known codes are named.
func refusalPage(code, subcode string) page {
	p := page{Title: "Consent was not granted"}
	switch {
	case code == "access_denied" && subcode == "cancel":
		p.Message = "The administrator cancelled the consent. Nothing was changed; you can start the onboarding again at any time."
	case code == "access_denied":
		p.Message = "Consent was denied. An administrator of your organization (Global Administrator, Privileged Role Administrator or Cloud Application Administrator) must grant it."
	case code == "consent_required" || code == "interaction_required":
		p.Message = "Consent is required from an administrator of your organization."
	case code == "invalid_request" || code == "invalid_client" || code == "unauthorized_client":
		p.Message = "Microsoft Entra ID refused the consent request of this app. Please contact its support."
	case code == "server_error" || code == "temporarily_unavailable":
		p.Message = "Microsoft Entra ID could not process the consent. Please try again later."
	default:
		p.Message = "Microsoft Entra ID did not grant consent."
	}
	return p
}

// reportPage shows the proof's report.
func reportPage(r Report) page {
	p := page{Tenant: r.Tenant, Resources: r.Resources, Hint: r.Hint}
	switch r.State {
	case StateOK:
		p.Title, p.OK, p.Message = "Onboarding complete", true, "Your organization granted consent; this app now has access with the permissions below."
	case StateMissingRoles:
		p.Title, p.Message = "Onboarding incomplete", "Consent was recorded, but some permissions this app needs were not granted. An administrator can grant them by consenting again."
	case StateUnreachable, "app_not_found":
		p.Title, p.Message = "Consent recorded, access not confirmed yet", "Consent was recorded, but Microsoft Entra ID has not confirmed this app's access yet. It usually does within minutes; this app will check again."
	default:
		p.Title, p.Message = "Consent recorded, access refused", "Consent was recorded, but Microsoft Entra ID refuses this app in your organization ("+r.State+")."
	}
	return p
}
