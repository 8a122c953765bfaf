# Network namespaces for the browser cases that need a network of their own (tcp, firefox):
# iproute2 makes them and their veth pairs (and `tc` caps a rate); nftables drops what a
# case blocks.
apt_install iproute2 nftables
