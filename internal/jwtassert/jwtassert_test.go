package jwtassert

import (
	"strings"
	"testing"
)

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]string{"PS256": "PS256", "ps256": "PS256", "RS256": "RS256"} {
		if got, err := ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseAlgorithm("ES256"); err == nil {
		t.Error("ES256 accepted")
	}
}

func TestParseThumbprint(t *testing.T) {
	want := []byte{0xd4, 0x9a, 0xf6, 0x10, 0x33, 0x4d, 0xdf, 0x40, 0xea, 0x3c, 0xbe, 0x0f, 0x38, 0xb4, 0xe2, 0x9b, 0x8b, 0xa9, 0xb1, 0x3a}
	for _, in := range []string{"D49AF610334DDF40EA3CBE0F38B4E29B8BA9B13A", "d4:9a:f6:10:33:4d:df:40:ea:3c:be:0f:38:b4:e2:9b:8b:a9:b1:3a", "1Jr2EDNN30DqPL4POLTim4upsTo"} {
		got, err := ParseThumbprint(in)
		if err != nil || string(got) != string(want) {
			t.Errorf("ParseThumbprint(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "xyz", strings.Repeat("g", 40), "1Jr2EDNN30DqPL4POLTim4upsT="} {
		if _, err := ParseThumbprint(in); err == nil {
			t.Errorf("ParseThumbprint(%q) accepted", in)
		}
	}
}
