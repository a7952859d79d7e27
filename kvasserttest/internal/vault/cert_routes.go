package vault

// Routing of /certificates/... and /deletedcertificates/... requests.

import (
	"net/http"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// certificateRoute resolves /certificates/... and /deletedcertificates/...
// (segs with the first segment).
func (v *Vault) certificateRoute(method string, segs []string) (route, *apiError) {
	if segs[0] == "deletedcertificates" {
		return v.deletedCertificateRoute(method, segs)
	}
	segs = segs[1:]
	if len(segs) == 0 || (len(segs) == 1 && segs[0] == "") {
		if method == http.MethodGet {
			return route{op: emu.OpCertificateList, perm: "certificates/list", handle: v.listCertificates}, nil
		}
		return route{}, methodNotAllowed(method, "/certificates")
	}
	name := segs[0]
	if e := checkName(name); e != nil {
		return route{}, e
	}
	if len(segs) == 1 {
		return v.certificateItemRoute(method, name)
	}
	if len(segs) == 3 && segs[1] == "pending" && segs[2] == "merge" && method == http.MethodPost {
		return route{emu.OpCertificateMerge, "certificates/create", "certificates/" + name, v.mergeCertificate(name)}, nil
	}
	if len(segs) != 2 {
		return route{}, methodNotAllowed(method, "/certificates/"+strings.Join(segs, "/"))
	}
	return v.certificateSubRoute(method, name, segs[1])
}

// deletedCertificateRoute resolves /deletedcertificates/{name}[/recover].
func (v *Vault) deletedCertificateRoute(method string, segs []string) (route, *apiError) {
	if len(segs) < 2 || segs[1] == "" {
		return route{}, methodNotAllowed(method, "/deletedcertificates")
	}
	name := segs[1]
	if e := checkName(name); e != nil {
		return route{}, e
	}
	obj := "certificates/" + name
	switch {
	case len(segs) == 2 && method == http.MethodGet:
		return route{emu.OpCertificateDeleted, "certificates/get", obj, v.getDeletedCertificate(name)}, nil
	case len(segs) == 2 && method == http.MethodDelete:
		return route{emu.OpCertificateDeleted, "certificates/delete", obj, v.purgeCertificate(name)}, nil
	case len(segs) == 3 && segs[2] == "recover" && method == http.MethodPost:
		return route{emu.OpCertificateDeleted, "certificates/create", obj, v.recoverCertificate(name)}, nil
	}
	return route{}, methodNotAllowed(method, "/"+strings.Join(segs, "/"))
}

// certificateItemRoute resolves /certificates/{name}.
func (v *Vault) certificateItemRoute(method, name string) (route, *apiError) {
	obj := "certificates/" + name
	switch method {
	case http.MethodGet:
		return route{emu.OpCertificateGet, "certificates/get", obj, v.getCertificate(name, "")}, nil
	case http.MethodPatch:
		return route{emu.OpCertificateUpdate, "certificates/update", obj, v.updateCertificate(name, "")}, nil
	case http.MethodDelete:
		return route{emu.OpCertificateDelete, "certificates/delete", obj, v.deleteCertificate(name)}, nil
	}
	return route{}, methodNotAllowed(method, "/certificates/"+name)
}

// certificateSubRoute resolves /certificates/{name}/{sub}: an operation
// (create, import, versions, policy, pending) or a version.
func (v *Vault) certificateSubRoute(method, name, sub string) (route, *apiError) {
	obj := "certificates/" + name
	switch method + " " + sub {
	case "POST create":
		return route{emu.OpCertificateCreate, "certificates/create", obj, v.createCertificate(name)}, nil
	case "POST import":
		return route{emu.OpCertificateImport, "certificates/import", obj, v.importCertificate(name)}, nil
	case "GET versions":
		return route{emu.OpCertificateList, "certificates/list", obj, v.listCertificateVersions(name)}, nil
	case "GET policy":
		return route{emu.OpCertificatePolicy, "certificates/get", obj, v.getPolicy(name)}, nil
	case "PATCH policy":
		return route{emu.OpCertificatePolicy, "certificates/update", obj, v.updatePolicy(name)}, nil
	case "GET pending":
		return route{emu.OpCertificatePending, "certificates/get", obj, v.getPending(name)}, nil
	case "PATCH pending":
		return route{emu.OpCertificatePending, "certificates/update", obj, v.updatePending(name)}, nil
	case "DELETE pending":
		return route{emu.OpCertificateDelete, "certificates/delete", obj, v.deletePending(name)}, nil
	}
	if !isKeyword(sub) {
		switch method {
		case http.MethodGet:
			return route{emu.OpCertificateGet, "certificates/get", obj, v.getCertificate(name, sub)}, nil
		case http.MethodPatch:
			return route{emu.OpCertificateUpdate, "certificates/update", obj, v.updateCertificate(name, sub)}, nil
		}
	}
	return route{}, methodNotAllowed(method, "/certificates/"+name+"/"+sub)
}

func isKeyword(s string) bool {
	switch s {
	case "create", "import", "versions", "policy", "pending", "backup", "restore":
		return true
	}
	return false
}
