// Package junit writes JUnit XML merged across modes, for CI systems that
// read nothing else. Each mode is one <testsuite>; test names carry the mode
// so systems that flatten suites still see three distinct cases.
package junit
