module robodistill

go 1.24

require (
	github.com/bluenviron/goroslib/v2 v2.1.4
	github.com/spf13/cobra v1.8.1
	go.uber.org/zap v1.27.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	go.uber.org/multierr v1.10.0 // indirect
)
