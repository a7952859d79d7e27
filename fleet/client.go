package fleet

import (
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// NewClient makes a Redis client from a URL, for the CLI and simple setups:
//
//	redis://[user:password@]host:port[/db]      standalone
//	rediss://...                                 the same over TLS
//	redis://host1:port,host2:port?cluster=true  Redis Cluster (seed nodes)
//	redis://host:port?master_name=mymaster      Sentinel (sentinel addresses)
//
// User and password select an ACL user. The client fails fast, as a shared
// cache should: operations honour their context's deadline
// (ContextTimeoutEnabled), dial and I/O timeouts are short, and failed
// commands are not retried (the cache falls back to local acquisition
// instead). Other go-redis URL parameters (dial_timeout, read_timeout,
// pool_size, ...) are honoured by standalone URLs. A bad URL is a
// *kvassert.InputError that never shows the URL's password.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, inputerr.New("fleet", "rawURL", "invalid Redis URL (rawURL) %q: want redis://host:port or rediss://host:port", redactURL(rawURL))
	}
	q := u.Query()
	cluster := q.Get("cluster") == "true"
	master := q.Get("master_name")
	q.Del("cluster")
	q.Del("master_name")
	hosts := strings.Split(u.Host, ",")
	first := *u
	first.Host = hosts[0]
	first.RawQuery = q.Encode()
	o, err := redis.ParseURL(first.String())
	if err != nil {
		return nil, inputerr.New("fleet", "rawURL", "invalid Redis URL (rawURL) %q: %v", redactURL(rawURL), redactErr(err, u))
	}
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	if q.Get("dial_timeout") == "" {
		o.DialTimeout = 500 * time.Millisecond
	}
	if q.Get("read_timeout") == "" {
		o.ReadTimeout = time.Second
	}
	if q.Get("write_timeout") == "" {
		o.WriteTimeout = time.Second
	}
	uo := &redis.UniversalOptions{
		Addrs: hosts, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: o.PoolSize, MasterName: master,
		IsClusterMode: cluster,
	}
	if len(hosts) == 1 && !cluster && master == "" {
		return redis.NewClient(o), nil
	}
	if cluster && o.DB != 0 {
		return nil, inputerr.New("fleet", "rawURL", "invalid Redis URL (rawURL) %q: Redis Cluster has only database 0", redactURL(rawURL))
	}
	return redis.NewUniversalClient(uo), nil
}

// redactURL hides a URL's password, for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func redactErr(err error, u *url.URL) string {
	s := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}
