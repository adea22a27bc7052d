package metaworld

import "errors"

// Placeholder until the port lands.
var doorOpenTask = &Task{Name: "door-open", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("door-open: not ported yet") }}
