package proxy

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPI keeps the document in step with the routes and the request
// types: every route is described with its method and path parameters,
// nothing else is, and the request schemas list exactly the JSON members
// the decoder accepts.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties           map[string]any `json:"properties"`
				Required             []string       `json:"required"`
				AdditionalProperties *bool          `json:"additionalProperties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	s, err := New(&Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			described[strings.ToUpper(m)+" "+p] = true
		}
	}
	requestTypes := map[string]reflect.Type{
		"/api/token/kv-certificate":    reflect.TypeFor[kvCertificateRequest](),
		"/api/token/kv-key":            reflect.TypeFor[kvKeyRequest](),
		"/api/token/kv-key-info":       reflect.TypeFor[kvKeyInfoRequest](),
		"/api/token/local-certificate": reflect.TypeFor[localCertificateRequest](),
	}
	for _, rt := range s.routes() {
		path := strings.TrimSuffix(rt.path, "{$}")
		key := rt.method + " " + path
		if !described[key] {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		delete(described, key)
		op := doc.Paths[path][strings.ToLower(rt.method)]
		if op.OperationID == "" || len(op.Responses) == 0 {
			t.Errorf("%s: no operationId or responses", key)
		}
		var params []string
		for _, p := range op.Parameters {
			if p.In == "path" {
				params = append(params, p.Name)
			}
		}
		var want []string
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				want = append(want, strings.Trim(seg, "{}"))
			}
		}
		slices.Sort(params)
		slices.Sort(want)
		if !slices.Equal(params, want) {
			t.Errorf("%s: path parameters %v, want %v", key, params, want)
		}
		if typ, ok := requestTypes[path]; ok {
			ref := op.RequestBody.Content["application/json"].Schema.Ref
			schema, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
			if !ok {
				t.Errorf("%s: request schema %q missing", key, ref)
				continue
			}
			props, fields := slices.Sorted(maps.Keys(schema.Properties)), slices.Sorted(maps.Keys(jsonFields(typ)))
			if !slices.Equal(props, fields) {
				t.Errorf("%s: schema properties %v, request fields %v", key, props, fields)
			}
			if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
				t.Errorf("%s: schema allows additional properties", key)
			}
			for _, r := range schema.Required {
				if !slices.Contains(fields, r) {
					t.Errorf("%s: required %q is not a field", key, r)
				}
			}
		}
	}
	for name, typ := range map[string]reflect.Type{
		"TokenResponse":           reflect.TypeFor[tokenResponse](),
		"KeyInfo":                 reflect.TypeFor[keyInfoResponse](),
		"ManagedIdentityResponse": reflect.TypeFor[msiResponse](),
		"Problem":                 reflect.TypeFor[problem](),
		"FieldError":              reflect.TypeFor[fieldError](),
	} {
		props, fields := slices.Sorted(maps.Keys(doc.Components.Schemas[name].Properties)), slices.Sorted(maps.Keys(jsonFields(typ)))
		if !slices.Equal(props, fields) {
			t.Errorf("schema %s has %v, the Go type %v", name, props, fields)
		}
	}
	for key := range described {
		t.Errorf("openapi.json describes %s, which is not a route", key)
	}
	// Every $ref resolves.
	var all map[string]any
	_ = json.Unmarshal(openAPI, &all)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = all
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(all)
}
