package metaworld

import "errors"

// Placeholder until the port lands.
var windowOpenTask = &Task{Name: "window-open", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("window-open: not ported yet") }}
