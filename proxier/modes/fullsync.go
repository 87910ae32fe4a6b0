package modes

import "time"

// FullSyncPeriod is how often a mode that keeps a record of what it wrote
// really rewrites everything when a full sync is asked for (the syncPeriod
// resync, a node change) and nothing says the record is wrong: upstream's
// FullSyncPeriod. In between, such a request writes what differs. A full
// rewrite at 10,000 x 10 is seconds (iptables) or about a second of kernel
// time (nftables); run every syncPeriod (30 s) it held back any change that
// arrived meanwhile.
const FullSyncPeriod = time.Hour
