// Command benthos-peer is Benthos v4 with only the components the bench needs (the
// kafka input and the redis processor), built for the peers comparison of wfbench.
// It runs the config file given with -c like the benthos binary does.
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/redis"
	"github.com/benthosdev/benthos/v4/public/service"
)

func main() {
	service.RunCLI(context.Background())
}
