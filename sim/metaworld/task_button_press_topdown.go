package metaworld

import "errors"

// Placeholder until the port lands.
var buttonPressTopdownTask = &Task{Name: "button-press-topdown", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("button-press-topdown: not ported yet") }}
