package vault

import (
	"net/http"
	"net/url"
	"strconv"
)

// maxPage is the service's largest page (and its default): maxresults is
// 1-25.
const maxPage = 25

// page cuts one page out of items, as the service pages list answers: the
// page size is maxresults (default pageSize when set, else 25; at most 25)
// and nextLink carries an
// opaque $skiptoken, the api-version and maxresults. path is the list's path,
// e.g. "/certificates/{name}/versions".
func page[T any](r *http.Request, items []T, base, path string, pageSize int) (listResult[T], *apiError) {
	q := r.URL.Query()
	size := maxPage
	if pageSize > 0 {
		size = min(pageSize, maxPage)
	}
	if s := q.Get("maxresults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			return listResult[T]{}, badParameter("The 'maxresults' query parameter must be an integer between 1 and %d.", maxPage)
		}
		size = n
	}
	start := 0
	if s := q.Get("$skiptoken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return listResult[T]{}, badParameter("The '$skiptoken' query parameter is not valid.")
		}
		start = min(n, len(items))
	}
	end := min(start+size, len(items))
	out := listResult[T]{Value: append([]T{}, items[start:end]...)}
	if end < len(items) {
		next := url.Values{}
		next.Set("api-version", q.Get("api-version"))
		next.Set("$skiptoken", strconv.Itoa(end))
		next.Set("maxresults", strconv.Itoa(size))
		link := base + path + "?" + next.Encode()
		out.NextLink = &link
	}
	return out, nil
}

// SetListPageSize makes list answers that page (certificate versions) hold at
// most n items unless the request's maxresults says otherwise (0 restores
// the service's 25), so that a client's paging is exercised with few items.
func (v *Vault) SetListPageSize(n int) { v.pageSize.Store(int32(min(max(n, 0), maxPage))) }
