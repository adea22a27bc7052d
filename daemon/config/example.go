package config

import _ "embed"

//go:embed example.yaml
var example []byte

// Example is the commented example file, every value the default, that a robot installs
// as /etc/robodistill/daemon.yaml (the repository ships it as systemd/daemon.yaml; a test
// keeps the two equal).
func Example() []byte { return append([]byte(nil), example...) }
