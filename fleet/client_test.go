package fleet

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewClientFromURL(t *testing.T) {
	c, err := NewClient("rediss://app-user:s3cret@cache.example.com:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("%T", c)
	}
	o := rc.Options()
	if o.Addr != "cache.example.com:6380" || o.Username != "app-user" || o.Password != "s3cret" || o.DB != 2 || o.TLSConfig == nil || o.TLSConfig.ServerName != "cache.example.com" || !o.ContextTimeoutEnabled || o.MaxRetries > 0 {
		t.Fatalf("options %+v", o)
	}
	cl, err := NewClient("redis://a:7000,b:7001?cluster=true")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cc, ok := cl.(*redis.ClusterClient)
	if !ok || !cc.Options().ContextTimeoutEnabled || len(cc.Options().Addrs) != 2 {
		t.Fatalf("cluster: %T", cl)
	}
	sn, err := NewClient("redis://s1:26379,s2:26379?master_name=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	sn.Close()
	for _, bad := range []string{"http://x:1", "redis://", "rediss://u:s3cret@h:1/x/y", "redis://h:1/0?cluster=true&db=3", "not a url\x7f"} {
		_, err := NewClient(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}
