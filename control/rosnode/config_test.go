package rosnode

import (
	"testing"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{name: "defaults", env: nil,
			want: Config{Name: "n", Namespace: "/", MasterURI: DefaultMasterURI}},
		{name: "master and ip", env: map[string]string{"ROS_MASTER_URI": "http://10.0.0.2:11312/", "ROS_IP": "10.0.0.5"},
			want: Config{Name: "n", Namespace: "/", MasterURI: "http://10.0.0.2:11312/", Host: "10.0.0.5"}},
		{name: "hostname wins over ip", env: map[string]string{"ROS_HOSTNAME": "robot.local", "ROS_IP": "10.0.0.5"},
			want: Config{Name: "n", Namespace: "/", MasterURI: DefaultMasterURI, Host: "robot.local"}},
		{name: "namespace", env: map[string]string{"ROS_NAMESPACE": "/robot1"},
			want: Config{Name: "n", Namespace: "/robot1", MasterURI: DefaultMasterURI}},
		{name: "bad ip", env: map[string]string{"ROS_IP": "robot.local"},
			wantErr: `ROS_IP: "robot.local" is not an IP address`},
		{name: "bad master scheme", env: map[string]string{"ROS_MASTER_URI": "localhost:11311"},
			wantErr: `master URI (ROS_MASTER_URI): "localhost:11311": want http://HOST:PORT/`},
		{name: "relative namespace", env: map[string]string{"ROS_NAMESPACE": "robot1"},
			wantErr: `namespace: "robot1" must start with / and not end with /`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv("n", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c != tc.want {
				t.Fatalf("got %+v, %v; want %+v", c, err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Name: "sim_bridge", Namespace: "/", MasterURI: "http://127.0.0.1:11311/"}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.MasterURI = "http://localhost" }, ""}, // port defaults to 11311
		{func(c *Config) { c.Name = "" }, "name: empty"},
		{func(c *Config) { c.Name = "sim/bridge" }, `name: "sim/bridge" is not a ROS name (a letter, then letters, digits or _)`},
		{func(c *Config) { c.Name = "1node" }, `name: "1node" is not a ROS name (a letter, then letters, digits or _)`},
		{func(c *Config) { c.Namespace = "/a/b-c" }, `namespace: "/a/b-c": "b-c" is not a ROS name (a letter, then letters, digits or _)`},
		{func(c *Config) { c.MasterURI = "ftp://x:1/" }, `master URI (ROS_MASTER_URI): "ftp://x:1/": want http://HOST:PORT/`},
		{func(c *Config) { c.Host = "a b" }, `host (ROS_HOSTNAME/ROS_IP): "a b" is neither a host name nor an IP address`},
		{func(c *Config) { c.CheckInterval = -1 }, "check interval -1ns and call timeout 0s must not be negative"},
	} {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if got := errString(err); got != tc.want {
			t.Errorf("%+v: error %q, want %q", c, got, tc.want)
		}
	}
	if a, _ := masterAddress("http://localhost"); a != "localhost:11311" {
		t.Errorf("default port: %s", a)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct{ ns, in, want string }{
		{"/", "~seed", "/sim_bridge/seed"},
		{"/", "seed", "/seed"},
		{"/r1", "~seed", "/r1/sim_bridge/seed"},
		{"/r1", "camera/image_raw", "/r1/camera/image_raw"},
		{"/r1", "/use_sim_time", "/use_sim_time"},
	} {
		n := &Node{conf: Config{Name: "sim_bridge", Namespace: tc.ns}}
		n.abs = n.conf.absName()
		if got := n.Resolve(tc.in); got != tc.want {
			t.Errorf("ns %s: Resolve(%q) = %q, want %q", tc.ns, tc.in, got, tc.want)
		}
	}
}
