package cluster

// Lines is lines, for the tests of package cluster_test.
var Lines = lines
