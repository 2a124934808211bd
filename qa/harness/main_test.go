package harness_test

import (
	"os"
	"testing"

	"github.com/nodejoin/nodejoin/qa/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
