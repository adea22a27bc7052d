package rosnode

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config configures a Node. FromEnv fills it the way every ROS1 node does.
type Config struct {
	// Name is the node's base name, e.g. "sim_bridge".
	Name string
	// Namespace is the node's namespace ("/" by default). goroslib lets ROS_NAMESPACE
	// override it, so FromEnv reads ROS_NAMESPACE too.
	Namespace string
	// MasterURI is ROS_MASTER_URI, e.g. http://localhost:11311/.
	MasterURI string
	// Host is the address other nodes reach this node at: ROS_HOSTNAME, else ROS_IP. Empty
	// lets goroslib pick an address of an interface in the master's subnet.
	Host string
	// CheckInterval is how often the node asks the master whether it still knows this
	// node (default 250 ms). A master restart is noticed within about this time after the
	// new master answers.
	CheckInterval time.Duration
	// CallTimeout bounds the node's own XML-RPC calls to the master (default 2 s).
	CallTimeout time.Duration
}

// DefaultMasterURI is ROS's default when ROS_MASTER_URI is not set.
const DefaultMasterURI = "http://localhost:11311/"

// FromEnv returns a Config for a node named name, reading ROS_MASTER_URI, ROS_HOSTNAME,
// ROS_IP and ROS_NAMESPACE through getenv (os.Getenv in production). As in rospy and
// roscpp, ROS_HOSTNAME wins when both it and ROS_IP are set.
func FromEnv(name string, getenv func(string) string) (Config, error) {
	c := Config{Name: name, Namespace: "/", MasterURI: DefaultMasterURI}
	if v := getenv("ROS_MASTER_URI"); v != "" {
		c.MasterURI = v
	}
	if v := getenv("ROS_NAMESPACE"); v != "" {
		c.Namespace = v
	}
	switch host, ip := getenv("ROS_HOSTNAME"), getenv("ROS_IP"); {
	case host != "":
		c.Host = host
	case ip != "":
		if net.ParseIP(ip) == nil {
			return Config{}, fmt.Errorf("ROS_IP: %q is not an IP address", ip)
		}
		c.Host = ip
	}
	return c, c.Validate()
}

// Validate checks c; each error names the offending field.
func (c Config) Validate() error {
	var errs []error
	if err := validName(c.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if c.Namespace != "" && c.Namespace != "/" {
		if !strings.HasPrefix(c.Namespace, "/") || strings.HasSuffix(c.Namespace, "/") {
			errs = append(errs, fmt.Errorf("namespace: %q must start with / and not end with /", c.Namespace))
		} else {
			for _, part := range strings.Split(c.Namespace[1:], "/") {
				if err := validName(part); err != nil {
					errs = append(errs, fmt.Errorf("namespace: %q: %w", c.Namespace, err))
					break
				}
			}
		}
	}
	if _, err := masterAddress(c.MasterURI); err != nil {
		errs = append(errs, fmt.Errorf("master URI (ROS_MASTER_URI): %w", err))
	}
	if strings.ContainsAny(c.Host, "/: ") && net.ParseIP(c.Host) == nil {
		errs = append(errs, fmt.Errorf("host (ROS_HOSTNAME/ROS_IP): %q is neither a host name nor an IP address", c.Host))
	}
	if c.CheckInterval < 0 || c.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("check interval %v and call timeout %v must not be negative", c.CheckInterval, c.CallTimeout))
	}
	return errors.Join(errs...)
}

// validName checks a ROS graph resource base name: a letter, then letters, digits and _.
func validName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '_')) {
			return fmt.Errorf("%q is not a ROS name (a letter, then letters, digits or _)", s)
		}
	}
	return nil
}

// masterAddress turns a ROS master URI into goroslib's host:port.
func masterAddress(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" || u.Hostname() == "" {
		return "", fmt.Errorf("%q: want http://HOST:PORT/", uri)
	}
	port := u.Port()
	if port == "" {
		port = "11311"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = "/"
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 250 * time.Millisecond
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 2 * time.Second
	}
	return c
}

// absName is the node's fully qualified name.
func (c Config) absName() string {
	if c.Namespace == "/" {
		return "/" + c.Name
	}
	return c.Namespace + "/" + c.Name
}
