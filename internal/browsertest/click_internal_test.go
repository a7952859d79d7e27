package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fatalTB records the first Fatal instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

// fails runs fn with p reporting to a recorder and returns its Fatal message.
func fails(p *Page, fn func()) (msg string) {
	rec := &fatalTB{TB: p.t}
	old := p.t
	p.t = rec
	defer func() {
		p.t = old
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
		}
		msg = rec.msg
	}()
	fn()
	return ""
}

// Click is a user's click: an element covered by another, hidden or
// missing cannot be clicked, and the test fails saying so.
func TestClickRefusesWhatAUserCannotClick(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><div style="position:relative"><button id="covered">covered</button>
<div style="position:absolute;inset:0;background:white"></div></div><button id="hidden" hidden>x</button>
<button id="ok" onclick="document.title='clicked'">ok</button>`)
	}))
	defer srv.Close()
	p := Start(t, nil)
	p.Navigate(srv.URL)
	for sel, want := range map[string]string{"#covered": "covered at its centre", "#hidden": "hidden", "#missing": "no element matches"} {
		if msg := fails(p, func() { p.Click(sel) }); !strings.Contains(msg, want) {
			t.Errorf("Click(%s): %q, want a failure saying %q", sel, msg, want)
		}
	}
	p.Click("#ok")
	p.WaitFor("document.title === 'clicked'")
}
