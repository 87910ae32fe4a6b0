package bench

import (
	"fmt"
	"os"
	"strings"

	"github.com/proxyproof/proxyproof/clusters/proxierlog"
)

// A row that fails says what the proxier itself last complained about:
// the bench's own reading of the kernel only says that rules are missing
// (or, when the proxier never wrote any, how the empty table looks), which
// sends the reader the wrong way.
const logErrorLines = 3

// proxierSays is what a failed row's reason adds: the proxier's last
// errors from its log, one per line, under the log's path.
func proxierSays(log string) string {
	if log == "" {
		return ""
	}
	b, err := os.ReadFile(log)
	lines, errs := proxierlog.Errors(string(b), logErrorLines)
	what := "last errors"
	switch {
	case err != nil:
		return fmt.Sprintf("\nproxier log: %v", err)
	case len(lines) == 0:
		return fmt.Sprintf("\nproxier log %s: empty", log)
	case !errs:
		what = "last log lines (no error logged)"
	}
	return fmt.Sprintf("\nproxier's %s (%s):\n  %s", what, log, strings.Join(lines, "\n  "))
}
