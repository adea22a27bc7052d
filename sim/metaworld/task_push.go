package metaworld

import "errors"

// Placeholder until the port lands.
var pushTask = &Task{Name: "push", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("push: not ported yet") }}
