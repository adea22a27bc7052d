// Package config is robodistilld's configuration: one typed, versioned YAML file
// (/etc/robodistill/daemon.yaml on a robot), read over built-in defaults, with unknown keys
// rejected and every error naming its key path and, where the file gives one, its line.
//
// The same schema serves the file and the daemon's repeated `--set key=value` flag
// (ApplyOverrides), so a key that cannot be written in the file cannot be set on the
// command line either. docs/daemon-config.md documents every key; Example is the commented
// file a robot installs.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"robodistill/control/loop"
)

// Version is the only configuration version this build reads.
const Version = 1

// Config is the daemon's whole configuration. The yaml tags are the file's keys.
type Config struct {
	// Version must be Version; a file without it is refused.
	Version int     `yaml:"version"`
	ROS     ROS     `yaml:"ros"`
	Loop    Loop    `yaml:"loop"`
	Models  Models  `yaml:"models"`
	Vision  Vision  `yaml:"vision"`
	Topics  Topics  `yaml:"topics"`
	Safety  Safety  `yaml:"safety"`
	Log     Log     `yaml:"log"`
	HTTP    HTTP    `yaml:"http"`
	Logging Logging `yaml:"logging"`
}

// ROS is how the daemon joins the ROS graph. The defaults come from the environment the way
// every ROS1 node reads it, so that a robot's existing ROS_* variables keep working; a key
// set in the file wins over the environment.
type ROS struct {
	// MasterURI defaults to $ROS_MASTER_URI, else http://localhost:11311/.
	MasterURI string `yaml:"master_uri"`
	// Node is the node's base name.
	Node string `yaml:"node"`
	// Namespace defaults to $ROS_NAMESPACE, else "/". Relative topic names resolve under it.
	Namespace string `yaml:"namespace"`
	// Host is the name or address other nodes reach the daemon at: defaults to
	// $ROS_HOSTNAME, else $ROS_IP, else empty (goroslib picks an address of the interface
	// in the master's subnet).
	Host string `yaml:"host"`
}

// Loop is the fixed-rate control loop.
type Loop struct {
	// RateHz is the control rate. Policies are trained at the rate they run at (the policy
	// manifest's control.rate_hz); the daemon refuses a policy trained at another rate.
	RateHz int `yaml:"rate_hz"`
	// SpinUS is how many microseconds before each tick the loop stops sleeping and spins,
	// trading CPU for less wake-up jitter. 0 sleeps all the way.
	SpinUS int `yaml:"spin_us"`
	// RealtimePriority runs the control thread (only it) under SCHED_FIFO at this
	// priority, 1–99, ahead of every ordinary process; 0 does not ask. It needs
	// CAP_SYS_NICE or an RLIMIT_RTPRIO of at least this much (robodistilld.service sets
	// LimitRTPRIO=); without either the daemon warns and runs on the ordinary scheduler.
	RealtimePriority int `yaml:"realtime_priority"`
}

// Period is one control period, 1/RateHz.
func (l Loop) Period() time.Duration {
	if l.RateHz <= 0 {
		return 0
	}
	return time.Second / time.Duration(l.RateHz)
}

// Spin is SpinUS as a duration.
func (l Loop) Spin() time.Duration { return time.Duration(l.SpinUS) * time.Microsecond }

// Models are the two ONNX models. Each is MODEL.onnx with its sidecar manifest
// MODEL.onnx.json next to it (control/onnxio).
type Models struct {
	// Reward is the distilled reward model (its manifest also fixes the vision
	// preprocessing the daemon runs).
	Reward string `yaml:"reward"`
	// Policy is the policy model.
	Policy string `yaml:"policy"`
	// Watch reloads a model when its file changes (after verifying it; a bad new file
	// keeps the old model running).
	Watch bool `yaml:"watch"`
}

// Vision constrains the camera. The preprocessing itself (crop, size, channels,
// normalisation) is not configured here: it is the reward model manifest's input.vision,
// so the daemon cannot run a model on inputs it was not trained on. These keys only
// require the camera to deliver what the robot's installation expects.
type Vision struct {
	// CameraWidth and CameraHeight, when not 0, refuse frames of another size.
	CameraWidth  int `yaml:"camera_width"`
	CameraHeight int `yaml:"camera_height"`
	// CameraEncoding, when not empty, refuses frames of another encoding: rgb8, bgr8 or
	// mono8.
	CameraEncoding string `yaml:"camera_encoding"`
}

// CameraEncodings are the sensor_msgs/Image encodings vision/ reads.
var CameraEncodings = []string{"rgb8", "bgr8", "mono8"}

// Topics are the ROS names the daemon uses. A relative name resolves under ros.namespace;
// an absolute one (leading /) is used as is. The defaults are ARCHITECTURE.md's interface.
type Topics struct {
	Image       string `yaml:"image"`        // in: sensor_msgs/Image
	CameraInfo  string `yaml:"camera_info"`  // in: sensor_msgs/CameraInfo
	EEPose      string `yaml:"ee_pose"`      // in: geometry_msgs/PoseStamped
	JointStates string `yaml:"joint_states"` // in: sensor_msgs/JointState
	// Objects is the prefix of object poses: object NAME's pose is Objects/NAME/pose.
	Objects     string `yaml:"objects"`
	Goal        string `yaml:"goal"`        // in: geometry_msgs/PoseStamped
	Estop       string `yaml:"estop"`       // in: std_msgs/Bool
	CmdVel      string `yaml:"cmd_vel"`     // out: geometry_msgs/TwistStamped
	Gripper     string `yaml:"gripper"`     // out: std_msgs/Float64
	Reward      string `yaml:"reward"`      // out: std_msgs/Float32
	Diagnostics string `yaml:"diagnostics"` // out: diagnostic_msgs/DiagnosticArray
}

// Resolve returns the topics with relative names made absolute under namespace ("" or "/"
// for the root).
func (t Topics) Resolve(namespace string) Topics {
	ns := "/" + strings.Trim(namespace, "/")
	for _, f := range t.fields() {
		if !strings.HasPrefix(*f.name, "/") {
			*f.name = path.Join(ns, *f.name)
		}
	}
	return t
}

// ObjectPose is object name's pose topic under the Objects prefix.
func (t Topics) ObjectPose(name string) string { return path.Join(t.Objects, name, "pose") }

type topicField struct {
	key  string
	name *string
}

// fields lists the topics with their keys, in file order, pointing into t.
func (t *Topics) fields() []topicField {
	return []topicField{
		{"image", &t.Image}, {"camera_info", &t.CameraInfo}, {"ee_pose", &t.EEPose},
		{"joint_states", &t.JointStates}, {"objects", &t.Objects}, {"goal", &t.Goal},
		{"estop", &t.Estop}, {"cmd_vel", &t.CmdVel}, {"gripper", &t.Gripper},
		{"reward", &t.Reward}, {"diagnostics", &t.Diagnostics},
	}
}

// Safety configures the safety filter between the policy and the actuators. Actions are
// MetaWorld's: x, y, z hand displacement per period and gripper effort, each in [-1, 1].
type Safety struct {
	Action Range4 `yaml:"action"`
	// Workspace is the box, in metres in the robot's base frame, the hand must stay in;
	// velocity commands that would leave it are cut.
	Workspace Box `yaml:"workspace"`
	// MaxDelta bounds how much each action component may change from one cycle to the
	// next, in action units.
	MaxDelta [4]float64 `yaml:"max_delta"`
	// CameraMaxAge and StateMaxAge are how old the newest camera frame and robot state may
	// be when a cycle uses them; older inputs hold the arm (zero velocity).
	CameraMaxAge time.Duration `yaml:"camera_max_age"`
	StateMaxAge  time.Duration `yaml:"state_max_age"`
	// StopAfter is how long the filter may hold before it latches into the stopped state,
	// which only fresh inputs and an operator's estop release end.
	StopAfter time.Duration `yaml:"stop_after"`
}

// Range4 is a per-component closed interval for a 4-D action.
type Range4 struct {
	Low  [4]float64 `yaml:"low"`
	High [4]float64 `yaml:"high"`
}

// Box is an axis-aligned box in metres.
type Box struct {
	Min [3]float64 `yaml:"min"`
	Max [3]float64 `yaml:"max"`
}

// Log is the transition log: the episodes the robot records (control/episode's ROS bag
// format) for fine-tuning.
type Log struct {
	Enabled bool `yaml:"enabled"`
	// Dir is where the episode files go.
	Dir string `yaml:"dir"`
	// Queue is how many transitions may wait for the writer; when it is full the control
	// loop drops transitions (counted) rather than wait.
	Queue int `yaml:"queue"`
	// Chunk is how much robot time goes into one file before the writer starts the next.
	Chunk time.Duration `yaml:"chunk"`
}

// HTTP is the metrics and health endpoint.
type HTTP struct {
	// Listen is host:port for /metrics and /healthz; empty disables the server. The
	// default is loopback only: the metrics say what the robot does.
	Listen string `yaml:"listen"`
	// HealthPeriods is how many control periods may pass without a finished cycle before
	// /healthz answers 503 (and the systemd watchdog stops being fed).
	HealthPeriods int `yaml:"health_periods"`
	// PProf also serves Go's profiles and execution traces under /debug/pprof/ (for
	// chasing a latency tail: /debug/pprof/trace?seconds=5). Off by default: a profile
	// costs the control loop CPU while it is taken.
	PProf bool `yaml:"pprof"`
}

// Logging is the daemon's own log (zap).
type Logging struct {
	// Format is auto (json under the journal or when stderr is not a terminal, console
	// on a terminal), json or console.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// Logging formats and levels.
var (
	LogFormats = []string{"auto", "json", "console"}
	LogLevels  = []string{"debug", "info", "warn", "error"}
)

// DefaultMasterURI is ROS's master URI when ROS_MASTER_URI is not set.
const DefaultMasterURI = "http://localhost:11311/"

// Default is the configuration of a file that says only "version: 1", in the current
// environment (ROS_MASTER_URI, ROS_NAMESPACE, ROS_HOSTNAME, ROS_IP).
func Default() Config {
	return Config{
		Version: Version,
		ROS:     rosFromEnv(os.Getenv),
		Loop:    Loop{RateHz: 50, SpinUS: 0, RealtimePriority: 50},
		Models: Models{
			Reward: "/var/lib/robodistill/models/reward.onnx",
			Policy: "/var/lib/robodistill/models/policy.onnx",
			Watch:  false,
		},
		Vision: Vision{},
		Topics: Topics{
			Image:       "camera/image_raw",
			CameraInfo:  "camera/camera_info",
			EEPose:      "arm/ee_pose",
			JointStates: "arm/joint_states",
			Objects:     "objects",
			Goal:        "task/goal",
			Estop:       "estop",
			CmdVel:      "arm/cmd_vel",
			Gripper:     "gripper/command",
			Reward:      "reward",
			Diagnostics: "diagnostics",
		},
		Safety: Safety{
			Action: Range4{Low: [4]float64{-1, -1, -1, -1}, High: [4]float64{1, 1, 1, 1}},
			// MetaWorld's hand limits for the Sawyer tasks (sim/metaworld).
			Workspace:    Box{Min: [3]float64{-0.5, 0.40, 0.05}, Max: [3]float64{0.5, 1.0, 0.5}},
			MaxDelta:     [4]float64{0.5, 0.5, 0.5, 2},
			CameraMaxAge: 200 * time.Millisecond,
			StateMaxAge:  100 * time.Millisecond,
			StopAfter:    time.Second,
		},
		Log: Log{
			Enabled: true,
			Dir:     "/var/lib/robodistill/log",
			Queue:   1024,
			Chunk:   time.Minute,
		},
		HTTP:    HTTP{Listen: "127.0.0.1:9477", HealthPeriods: 10},
		Logging: Logging{Format: "auto", Level: "info"},
	}
}

// envKeys are the keys whose defaults come from the environment; the example file leaves
// them commented out so that the environment keeps working.
var envKeys = []string{"ros.master_uri", "ros.namespace", "ros.host"}

func rosFromEnv(getenv func(string) string) ROS {
	r := ROS{MasterURI: DefaultMasterURI, Node: "robodistilld", Namespace: "/"}
	if v := getenv("ROS_MASTER_URI"); v != "" {
		r.MasterURI = v
	}
	if v := getenv("ROS_NAMESPACE"); v != "" {
		r.Namespace = v
	}
	if v := getenv("ROS_HOSTNAME"); v != "" {
		r.Host = v
	} else {
		r.Host = getenv("ROS_IP")
	}
	return r
}

// FieldError is a problem with one key. Line is the line in the file the key or its value
// is on, 0 when unknown (defaults, --set overrides).
type FieldError struct {
	Key  string // the key path, e.g. "safety.workspace.min" or "safety.max_delta[2]"
	Line int
	Msg  string
}

// Error is "line N: key.path: message", without the parts that are unknown.
func (e *FieldError) Error() string {
	s := e.Msg
	if e.Key != "" {
		s = e.Key + ": " + s
	}
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

func fieldErr(key, format string, args ...any) *FieldError {
	return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks every key and the files the config names; the error lists every
// problem (errors.Join of *FieldError), each naming its key.
func (c Config) Validate() error { return joinFieldErrors(c.validate()) }

func joinFieldErrors(fe []*FieldError) error {
	if len(fe) == 0 {
		return nil
	}
	errs := make([]error, len(fe))
	for i, e := range fe {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (c Config) validate() []*FieldError {
	var v validator
	if c.Version != Version {
		v.add("version", "%d is not supported (this build reads version %d)", c.Version, Version)
	}
	c.ROS.validate(&v)
	c.Loop.validate(&v)
	c.Models.validate(&v)
	c.Vision.validate(&v)
	c.Topics.validate(&v)
	c.Safety.validate(&v, c.Loop.Period())
	c.Log.validate(&v)
	c.HTTP.validate(&v)
	c.Logging.validate(&v)
	return v.errs
}

type validator struct{ errs []*FieldError }

func (v *validator) add(key, format string, args ...any) {
	v.errs = append(v.errs, fieldErr(key, format, args...))
}

func (r ROS) validate(v *validator) {
	if err := checkMasterURI(r.MasterURI); err != nil {
		v.add("ros.master_uri", "%v (the default comes from $ROS_MASTER_URI)", err)
	}
	if err := checkBaseName(r.Node); err != nil {
		v.add("ros.node", "%v", err)
	}
	if r.Namespace != "/" {
		if !strings.HasPrefix(r.Namespace, "/") || strings.HasSuffix(r.Namespace, "/") {
			v.add("ros.namespace", "%q must be / or start with / and not end with / (the default comes from $ROS_NAMESPACE)", r.Namespace)
		} else if err := checkNameParts(r.Namespace[1:]); err != nil {
			v.add("ros.namespace", "%q: %v (the default comes from $ROS_NAMESPACE)", r.Namespace, err)
		}
	}
	if r.Host != "" && net.ParseIP(r.Host) == nil && !validHostname(r.Host) {
		v.add("ros.host", "%q is neither a host name nor an IP address (the default comes from $ROS_HOSTNAME, else $ROS_IP)", r.Host)
	}
}

func checkMasterURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want http://HOST:PORT/", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not 1 to 65535", s, p)
		}
	}
	return nil
}

// checkBaseName checks a ROS graph resource base name: a letter, then letters, digits, _.
func checkBaseName(s string) error {
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

func checkNameParts(s string) error {
	for _, part := range strings.Split(s, "/") {
		if err := checkBaseName(part); err != nil {
			return err
		}
	}
	return nil
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// MaxRateHz bounds loop.rate_hz.
const MaxRateHz = 1000

func (l Loop) validate(v *validator) {
	if l.RateHz < 1 || l.RateHz > MaxRateHz {
		v.add("loop.rate_hz", "must be 1 to %d, got %d", MaxRateHz, l.RateHz)
		return
	}
	if p := l.Period(); l.SpinUS < 0 || l.Spin() >= p {
		v.add("loop.spin_us", "must be 0 or more and less than one period (%d µs at %d Hz), got %d", p.Microseconds(), l.RateHz, l.SpinUS)
	}
	if l.RealtimePriority < 0 || l.RealtimePriority > loop.MaxPriority {
		v.add("loop.realtime_priority", "must be 0 (ordinary scheduling) to %d (SCHED_FIFO), got %d", loop.MaxPriority, l.RealtimePriority)
	}
}

func (m Models) validate(v *validator) {
	checkModel(v, "models.reward", m.Reward)
	checkModel(v, "models.policy", m.Policy)
}

func checkModel(v *validator, key, p string) {
	if !filepath.IsAbs(p) {
		v.add(key, "must be an absolute path, got %q", p)
		return
	}
	if err := checkFile(p); err != nil {
		v.add(key, "file %s: %v", p, err)
		return
	}
	if err := checkFile(p + ".json"); err != nil {
		v.add(key, "manifest %s.json: %v (written next to the model by robodistill)", p, err)
	}
}

func checkFile(p string) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied")
	case err != nil:
		return err
	case fi.IsDir():
		return errors.New("is a directory")
	case !fi.Mode().IsRegular():
		return errors.New("not a regular file")
	}
	return nil
}

// MaxCameraSize bounds vision.camera_width and camera_height.
const MaxCameraSize = 16384

func (s Vision) validate(v *validator) {
	if s.CameraWidth < 0 || s.CameraWidth > MaxCameraSize {
		v.add("vision.camera_width", "must be 0 (any) to %d, got %d", MaxCameraSize, s.CameraWidth)
	}
	if s.CameraHeight < 0 || s.CameraHeight > MaxCameraSize {
		v.add("vision.camera_height", "must be 0 (any) to %d, got %d", MaxCameraSize, s.CameraHeight)
	}
	if s.CameraEncoding != "" && !slices.Contains(CameraEncodings, s.CameraEncoding) {
		v.add("vision.camera_encoding", "unknown encoding %q (want %s, or empty for any)", s.CameraEncoding, orList(CameraEncodings))
	}
}

func (t Topics) validate(v *validator) {
	for _, f := range t.fields() {
		name := *f.name
		var err error
		switch {
		case name == "":
			err = errors.New("empty")
		case strings.HasPrefix(name, "~"):
			err = fmt.Errorf("%q: private (~) names are not supported", name)
		case name == "/" || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
			err = fmt.Errorf("%q is not a topic name", name)
		default:
			if e := checkNameParts(strings.TrimPrefix(name, "/")); e != nil {
				err = fmt.Errorf("%q: %v", name, e)
			}
		}
		if err != nil {
			v.add("topics."+f.key, "%v", err)
		}
	}
}

// MaxAge bounds the safety durations: anything longer is not a safety limit.
const MaxAge = 10 * time.Second

func (s Safety) validate(v *validator, period time.Duration) {
	for i := range 4 {
		lo, hi := s.Action.Low[i], s.Action.High[i]
		switch {
		case !finite(lo) || lo < -1 || lo > 1:
			v.add(fmt.Sprintf("safety.action.low[%d]", i), "must be in [-1, 1], got %g", lo)
		case !finite(hi) || hi < -1 || hi > 1:
			v.add(fmt.Sprintf("safety.action.high[%d]", i), "must be in [-1, 1], got %g", hi)
		case lo >= hi:
			v.add(fmt.Sprintf("safety.action.low[%d]", i), "%g must be below safety.action.high[%d] (%g)", lo, i, hi)
		}
	}
	for i := range 3 {
		lo, hi := s.Workspace.Min[i], s.Workspace.Max[i]
		switch {
		case !finite(lo):
			v.add(fmt.Sprintf("safety.workspace.min[%d]", i), "must be finite, got %g", lo)
		case !finite(hi):
			v.add(fmt.Sprintf("safety.workspace.max[%d]", i), "must be finite, got %g", hi)
		case lo >= hi:
			v.add(fmt.Sprintf("safety.workspace.min[%d]", i), "%g m must be below safety.workspace.max[%d] (%g m)", lo, i, hi)
		}
	}
	for i, d := range s.MaxDelta {
		if !finite(d) || d <= 0 || d > 2 {
			v.add(fmt.Sprintf("safety.max_delta[%d]", i), "must be above 0 and at most 2 (the whole action range), got %g", d)
		}
	}
	for _, a := range []struct {
		key string
		d   time.Duration
	}{{"safety.camera_max_age", s.CameraMaxAge}, {"safety.state_max_age", s.StateMaxAge}, {"safety.stop_after", s.StopAfter}} {
		switch {
		case a.d <= 0 || a.d > MaxAge:
			v.add(a.key, "must be above 0 and at most %v, got %v", MaxAge, a.d)
		case period > 0 && a.d < period:
			v.add(a.key, "%v is shorter than one loop period (%v at loop.rate_hz)", a.d, period)
		}
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// MaxQueue bounds log.queue.
const MaxQueue = 1 << 20

func (l Log) validate(v *validator) {
	if !filepath.IsAbs(l.Dir) {
		v.add("log.dir", "must be an absolute path, got %q", l.Dir)
	}
	if l.Queue < 1 || l.Queue > MaxQueue {
		v.add("log.queue", "must be 1 to %d, got %d", MaxQueue, l.Queue)
	}
	if l.Chunk < time.Second || l.Chunk > 24*time.Hour {
		v.add("log.chunk", "must be 1s to 24h, got %v", l.Chunk)
	}
}

func (h HTTP) validate(v *validator) {
	if h.Listen != "" {
		host, port, err := net.SplitHostPort(h.Listen)
		if err != nil {
			v.add("http.listen", "%q: want HOST:PORT (or empty to disable)", h.Listen)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("http.listen", "%q: port %q is not 0 to 65535", h.Listen, port)
		} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			v.add("http.listen", "%q: %q is neither a host name nor an IP address", h.Listen, host)
		}
	}
	if h.HealthPeriods < 1 || h.HealthPeriods > 100000 {
		v.add("http.health_periods", "must be 1 to 100000, got %d", h.HealthPeriods)
	}
}

func (l Logging) validate(v *validator) {
	if !slices.Contains(LogFormats, l.Format) {
		v.add("logging.format", "unknown format %q (want %s)", l.Format, orList(LogFormats))
	}
	if !slices.Contains(LogLevels, l.Level) {
		v.add("logging.level", "unknown level %q (want %s)", l.Level, orList(LogLevels))
	}
}

// orList is "a, b or c".
func orList(list []string) string {
	if len(list) == 1 {
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
