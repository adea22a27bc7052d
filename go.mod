module robodistill

go 1.24

require (
	github.com/bluenviron/goroslib/v2 v2.1.4
	github.com/foxglove/go-rosbag v0.0.6
	github.com/pierrec/lz4/v4 v4.1.18
	github.com/spf13/cobra v1.8.1
	go.uber.org/zap v1.27.0
	golang.org/x/sync v0.10.0
	gonum.org/v1/gonum v0.15.1
	gonum.org/v1/netlib v0.0.0-20230729102104-8b8060e7531f
)

require (
	github.com/davecgh/go-spew v1.1.1 // indirect
	github.com/gookit/color v1.5.4 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/pmezard/go-difflib v1.0.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	github.com/stretchr/testify v1.8.4 // indirect
	github.com/xo/terminfo v0.0.0-20210125001918-ca9a967f8778 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	gocv.io/x/gocv v0.31.0
	golang.org/x/sys v0.10.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
