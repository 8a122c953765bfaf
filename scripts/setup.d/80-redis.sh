# Multi-node coordination (the `cluster` crate's tests): Debian's redis-server, which each
# test starts on a loopback port of its own (the package's own service is not used).
apt_install redis-server
