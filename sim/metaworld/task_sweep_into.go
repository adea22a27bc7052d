package metaworld

import "errors"

// Placeholder until the port lands.
var sweepIntoTask = &Task{Name: "sweep-into", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("sweep-into: not ported yet") }}
