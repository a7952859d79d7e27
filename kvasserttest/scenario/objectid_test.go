package scenario

import (
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
)

func TestAppObjectID(t *testing.T) {
	d := Demo()
	if got := d.Apps[0].AppObjectID(); got != DemoAppObjectID {
		t.Fatalf("demo app object ID %q, want the scenario's %q", got, DemoAppObjectID)
	}
	a := &d.Apps[1] // no objectId: derived
	got := a.AppObjectID()
	if !names.IsGUID(got) || strings.EqualFold(got, a.ClientID) || got != strings.ToLower(got) {
		t.Fatalf("derived object ID %q: want a lower-case GUID other than the client ID", got)
	}
	if got != names.DerivedObjectID(strings.ToUpper(a.ClientID)) || got[14] != '5' {
		t.Fatalf("derived object ID %q is not the stable version-5 GUID of the client ID", got)
	}
	if names.DerivedObjectID(d.Apps[0].ClientID) == got {
		t.Fatal("two apps derived the same object ID")
	}
	a.ObjectID = "AAAAAAAA-1111-4222-8333-444444444444"
	if a.AppObjectID() != "aaaaaaaa-1111-4222-8333-444444444444" {
		t.Fatalf("explicit object ID = %q", a.AppObjectID())
	}
	if app, ok := d.app("aaaaaaaa-1111-4222-8333-444444444444"); !ok || app.ClientID != emuhook.DemoWorkloadClientID {
		t.Fatal("App(object ID) did not find the app")
	}
	if app, ok := d.app(strings.ToUpper(DemoAppClientID)); !ok || app.ClientID != DemoAppClientID {
		t.Fatal("App(client ID) did not find the app")
	}
	if _, ok := d.app("nope"); ok {
		t.Fatal("App(unknown) found an app")
	}
}

func TestParseObjectID(t *testing.T) {
	const head = `{"tenants":[{"id":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"}],"apps":[`
	const app = `{"clientId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"`
	const app2 = `{"clientId":"3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27","homeTenant":"8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"`
	s, err := Parse([]byte(head + app + `,"objectId":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}]}`))
	if err != nil || s.Apps[0].AppObjectID() != "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" {
		t.Fatalf("objectId not read: %v", err)
	}
	for _, c := range []struct{ name, json, want string }{
		{"not a GUID", head + app + `,"objectId":"app"}]}`, `apps[0].objectId "app" is not a GUID`},
		{"client ID", head + app + `,"objectId":"6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"}]}`, "apps[0].objectId equals its clientId"},
		{"twice", head + app + `,"objectId":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},` + app2 + `,"objectId":"0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"}]}`, "apps[1].objectId"},
		{"misspelt", head + app + `,"objectID":"0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","objectid2":1}]}`, "unknown field"},
	} {
		if _, err := Parse([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse error = %v, want %q", c.name, err, c.want)
		}
	}
}
