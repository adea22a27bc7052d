package config

import (
	"errors"
	"strings"
	"testing"
)

// TestParseErrors lists what each kind of mistake says. Inputs get the test models
// appended (withModels) unless they have a models section, so that only the mistake under
// test is reported.
func TestParseErrors(t *testing.T) {
	clearROSEnv(t)
	for _, tc := range []struct{ name, in, want string }{
		// The document.
		{"empty", "", `version: required, and the file is empty (start it with "version: 1")`},
		{"comment only", "# nothing\n", `version: required, and the file is empty (start it with "version: 1")`},
		{"no version", "loop:\n  rate_hz: 50\n", `line 1: version: required (this build reads "version: 1")`},
		{"version 2", "version: 2\nloop: {rate: 1}\n", `line 1: version: 2 is not supported (this build reads version 1)`},
		{"version text", "version: one\n", `line 1: version: want an integer, got "one"`},
		{"version float", "version: 1.0\nloop: {}\n", `line 1: version: want an integer, got 1.0`},
		{"a list", "- version: 1\n", `line 1: the configuration must be a mapping of keys (version: 1, ros: …), got a list of 1`},
		{"a scalar", "hello\n", `line 1: the configuration must be a mapping of keys (version: 1, ros: …), got "hello"`},
		{"two documents", "version: 1\n---\nversion: 1\n", `line 2: a second YAML document (---): the configuration is one document`},
		{"syntax", "version: 1\nloop:\n  rate_hz: 50\n    spin_us: 3\n", `yaml: line 4: mapping values are not allowed in this context`},
		{"unknown anchor", "version: 1\nloop:\n  rate_hz: *nope\n", `yaml: unknown anchor 'nope' referenced`},
		{"tab", "version: 1\nloop:\n\trate_hz: 5\n", `yaml: line 3: found character that cannot start any token`},

		// Keys.
		{"unknown top", "version: 1\nlooop: {}\n", `line 2: looop: unknown key (top-level keys: version, ros, loop, models, vision, topics, safety, log, http, logging)`},
		{"unknown nested", "version: 1\nloop:\n  rat_hz: 5\n", `line 3: loop.rat_hz: unknown key (loop has: rate_hz, spin_us, realtime_priority)`},
		{"unknown deep", "version: 1\nsafety:\n  workspace:\n    minimum: [0, 0, 0]\n", `line 4: safety.workspace.minimum: unknown key (safety.workspace has: min, max)`},
		{"duplicate", "version: 1\nloop:\n  rate_hz: 50\n  rate_hz: 60\n", `line 4: loop.rate_hz: duplicate key (first on line 3)`},
		{"merge key", "version: 1\nbase: &b {rate_hz: 20}\nloop:\n  <<: *b\n", "line 2: base: unknown key (top-level keys: version, ros, loop, models, vision, topics, safety, log, http, logging)\n" +
			"line 4: loop.<<: unknown key (loop has: rate_hz, spin_us, realtime_priority)"},
		{"list key", "version: 1\n? [a]\n: 1\n", `line 2: keys must be names, got a list of 1`},
		{"section scalar", "version: 1\nloop: 50\n", `line 2: loop: want a mapping of keys (rate_hz, spin_us, realtime_priority), got 50`},

		// Types.
		{"int from float", "version: 1\nloop:\n  rate_hz: 1.5\n", `line 3: loop.rate_hz: want an integer, got 1.5`},
		{"int from string", "version: 1\nloop:\n  rate_hz: fast\n", `line 3: loop.rate_hz: want an integer, got "fast"`},
		{"null", "version: 1\nloop:\n  rate_hz:\n", `line 3: loop.rate_hz: want an integer, got null (remove the key to get its default)`},
		{"bool yes", "version: 1\nmodels:\n  watch: yes\n", `line 3: models.watch: want true or false, got "yes"`},
		{"string from int", "version: 1\nros:\n  node: 7\n", `line 3: ros.node: want a string, got 7`},
		{"string from list", "version: 1\ntopics:\n  image: [a]\n", `line 3: topics.image: want a string, got a list of 1`},
		{"duration without unit", "version: 1\nsafety:\n  camera_max_age: 100\n", `line 3: safety.camera_max_age: want a duration such as "100ms", got 100`},
		{"duration text", "version: 1\nsafety:\n  stop_after: soon\n", `line 3: safety.stop_after: want a duration such as "100ms", got "soon"`},
		{"array short", "version: 1\nsafety:\n  workspace:\n    min: [0, 1]\n", `line 4: safety.workspace.min: want 3 numbers, got 2`},
		{"array scalar", "version: 1\nsafety:\n  max_delta: 0.5\n", `line 3: safety.max_delta: want a list of 4 numbers, got 0.5`},
		{"array item", "version: 1\nsafety:\n  max_delta: [0.5, 0.5, a, 2]\n", `line 3: safety.max_delta[2]: want a number, got "a"`},
		{"array item block", "version: 1\nsafety:\n  action:\n    high:\n      - 1\n      - 1\n      - [1]\n      - 1\n", `line 7: safety.action.high[2]: want a number, got a list of 1`},
		{"several", "version: 1\nloop:\n  rate_hz: x\n  spin_us: y\nlogging:\n  level: 3\n", "line 3: loop.rate_hz: want an integer, got \"x\"\n" +
			"line 4: loop.spin_us: want an integer, got \"y\"\n" +
			"line 6: logging.level: want a string, got 3"},

		// Values (Validate), with the line of the key.
		{"rate 0", "version: 1\nloop:\n  rate_hz: 0\n", `line 3: loop.rate_hz: must be 1 to 1000, got 0`},
		{"spin too long", "version: 1\nloop:\n  spin_us: 20000\n", `line 3: loop.spin_us: must be 0 or more and less than one period (20000 µs at 50 Hz), got 20000`},
		{"priority", "version: 1\nloop: {realtime_priority: 100}\n", `line 2: loop.realtime_priority: must be 0 (ordinary scheduling) to 99 (SCHED_FIFO), got 100`},
		{"spin negative", "version: 1\nloop: {spin_us: -1}\n", `line 2: loop.spin_us: must be 0 or more and less than one period (20000 µs at 50 Hz), got -1`},
		{"master uri", "version: 1\nros:\n  master_uri: ftp://master/\n", `line 3: ros.master_uri: "ftp://master/": want http://HOST:PORT/ (the default comes from $ROS_MASTER_URI)`},
		{"master port", "version: 1\nros:\n  master_uri: http://master:99999/\n", `line 3: ros.master_uri: "http://master:99999/": port "99999" is not 1 to 65535 (the default comes from $ROS_MASTER_URI)`},
		{"node name", "version: 1\nros:\n  node: 1st-daemon\n", `line 3: ros.node: "1st-daemon" is not a ROS name (a letter, then letters, digits or _)`},
		{"namespace slash", "version: 1\nros:\n  namespace: robot/\n", `line 3: ros.namespace: "robot/" must be / or start with / and not end with / (the default comes from $ROS_NAMESPACE)`},
		{"namespace part", "version: 1\nros:\n  namespace: /cell/2b\n", `line 3: ros.namespace: "/cell/2b": "2b" is not a ROS name (a letter, then letters, digits or _) (the default comes from $ROS_NAMESPACE)`},
		{"host", "version: 1\nros:\n  host: my host\n", `line 3: ros.host: "my host" is neither a host name nor an IP address (the default comes from $ROS_HOSTNAME, else $ROS_IP)`},
		{"camera width", "version: 1\nvision:\n  camera_width: -1\n", `line 3: vision.camera_width: must be 0 (any) to 16384, got -1`},
		{"encoding", "version: 1\nvision:\n  camera_encoding: yuv422\n", `line 3: vision.camera_encoding: unknown encoding "yuv422" (want rgb8, bgr8 or mono8, or empty for any)`},
		{"topic empty", "version: 1\ntopics:\n  image: \"\"\n", `line 3: topics.image: empty`},
		{"topic private", "version: 1\ntopics:\n  reward: ~reward\n", `line 3: topics.reward: "~reward": private (~) names are not supported`},
		{"topic slashes", "version: 1\ntopics:\n  estop: a//b\n", `line 3: topics.estop: "a//b" is not a topic name`},
		{"topic part", "version: 1\ntopics:\n  goal: task/1goal\n", `line 3: topics.goal: "task/1goal": "1goal" is not a ROS name (a letter, then letters, digits or _)`},
		{"action range", "version: 1\nsafety:\n  action:\n    low: [-1, -1, -1, -2]\n", `line 4: safety.action.low[3]: must be in [-1, 1], got -2`},
		{"action order", "version: 1\nsafety:\n  action: {low: [0, -1, -1, -1], high: [0, 1, 1, 1]}\n", `line 3: safety.action.low[0]: 0 must be below safety.action.high[0] (0)`},
		{"action alias", "version: 1\nsafety:\n  action:\n    low: &a [-1, -1, -1, -1]\n    high: *a\n", "line 4: safety.action.low[0]: -1 must be below safety.action.high[0] (-1)\n" +
			"line 4: safety.action.low[1]: -1 must be below safety.action.high[1] (-1)\n" +
			"line 4: safety.action.low[2]: -1 must be below safety.action.high[2] (-1)\n" +
			"line 4: safety.action.low[3]: -1 must be below safety.action.high[3] (-1)"},
		{"workspace order", "version: 1\nsafety:\n  workspace:\n    min: [-0.5, 0.4, 0.6]\n", `line 4: safety.workspace.min[2]: 0.6 m must be below safety.workspace.max[2] (0.5 m)`},
		{"workspace inf", "version: 1\nsafety:\n  workspace:\n    max: [.inf, 1, 0.5]\n", `line 4: safety.workspace.max[0]: must be finite, got +Inf`},
		{"max delta nan", "version: 1\nsafety:\n  max_delta: [0.5, 0.5, .nan, 2]\n", `line 3: safety.max_delta[2]: must be above 0 and at most 2 (the whole action range), got NaN`},
		{"max delta zero", "version: 1\nsafety:\n  max_delta: [0, 0.5, 0.5, 2]\n", `line 3: safety.max_delta[0]: must be above 0 and at most 2 (the whole action range), got 0`},
		{"age zero", "version: 1\nsafety:\n  stop_after: 0s\n", `line 3: safety.stop_after: must be above 0 and at most 10s, got 0s`},
		{"age below period", "version: 1\nsafety:\n  camera_max_age: 5ms\n", `line 3: safety.camera_max_age: 5ms is shorter than one loop period (20ms at loop.rate_hz)`},
		{"age too long", "version: 1\nsafety:\n  state_max_age: 1m\n", `line 3: safety.state_max_age: must be above 0 and at most 10s, got 1m0s`},
		{"log dir", "version: 1\nlog:\n  dir: log\n", `line 3: log.dir: must be an absolute path, got "log"`},
		{"log queue", "version: 1\nlog:\n  queue: 0\n", `line 3: log.queue: must be 1 to 1048576, got 0`},
		{"log chunk", "version: 1\nlog:\n  chunk: 500ms\n", `line 3: log.chunk: must be 1s to 24h, got 500ms`},
		{"listen", "version: 1\nhttp:\n  listen: localhost\n", `line 3: http.listen: "localhost": want HOST:PORT (or empty to disable)`},
		{"listen port", "version: 1\nhttp:\n  listen: \":99999\"\n", `line 3: http.listen: ":99999": port "99999" is not 0 to 65535`},
		{"health periods", "version: 1\nhttp:\n  health_periods: 0\n", `line 3: http.health_periods: must be 1 to 100000, got 0`},
		{"log format", "version: 1\nlogging:\n  format: text\n", `line 3: logging.format: unknown format "text" (want auto, json or console)`},
		{"log level", "version: 1\nlogging:\n  level: verbose\n", `line 3: logging.level: unknown level "verbose" (want debug, info, warn or error)`},
		{"model missing", "version: 1\nmodels:\n  reward: /x/reward.onnx\n  policy: /x/policy.onnx\n", "line 3: models.reward: file /x/reward.onnx: no such file\n" +
			"line 4: models.policy: file /x/policy.onnx: no such file"},
		{"model default", "version: 1\nmodels:\n  watch: true\n", "line 2: models.reward: file /var/lib/robodistill/models/reward.onnx: no such file\n" +
			"line 2: models.policy: file /var/lib/robodistill/models/policy.onnx: no such file"},
		// The loop period bounds the safety ages: at 5 Hz a 100 ms state age (the default,
		// so it has no line) is shorter than one period.
		{"cross key", "version: 1\nloop:\n  rate_hz: 5\n", `safety.state_max_age: 100ms is shorter than one loop period (200ms at loop.rate_hz)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(withModels(t, tc.in)))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if err.Error() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", err, tc.want)
			}
			if c != (Config{}) {
				t.Fatalf("error with a config: %+v", c)
			}
		})
	}
}

// TestFieldError checks that callers can get at the key and line of a problem.
func TestFieldError(t *testing.T) {
	clearROSEnv(t)
	_, err := Parse([]byte(withModels(t, "version: 1\nloop:\n  rate_hz: 0\nlogging: {level: loud}\n")))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("not a *FieldError: %#v", err)
	}
	if fe.Key != "loop.rate_hz" || fe.Line != 3 || fe.Msg != "must be 1 to 1000, got 0" {
		t.Fatalf("first error: %+v", fe)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 2 {
		t.Fatalf("%d errors, want 2: %v", n, err)
	}
}
