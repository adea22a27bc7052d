package metaworld

import "errors"

// Placeholder until the port lands.
var soccerTask = &Task{Name: "soccer", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("soccer: not ported yet") }}
