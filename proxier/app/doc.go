// Package app assembles a proxier from its configuration: the mode, the
// daemon, health and metrics servers, conntrack upkeep and events. It is the
// one place that knows every piece; the pieces do not know each other.
package app
