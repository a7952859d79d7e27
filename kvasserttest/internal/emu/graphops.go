package emu

// Operations of the Microsoft Graph emulator.
const (
	OpGraphGetApplication Op = "graph/applications/get"       // GET /v1.0/applications/{id}
	OpGraphAddKey         Op = "graph/applications/addKey"    // POST /v1.0/applications/{id}/addKey
	OpGraphRemoveKey      Op = "graph/applications/removeKey" // POST /v1.0/applications/{id}/removeKey
	OpGraphOrganization   Op = "graph/organization/get"       // GET /v1.0/organization
)
