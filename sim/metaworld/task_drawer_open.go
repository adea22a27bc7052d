package metaworld

import "errors"

// Placeholder until the port lands.
var drawerOpenTask = &Task{Name: "drawer-open", newImpl: func(*Env) (taskImpl, error) { return nil, errors.New("drawer-open: not ported yet") }}
