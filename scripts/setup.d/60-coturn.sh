# TURN (the browser suite's `turn` case): Debian's coturn, which the case starts on a loopback
# port of its own with a TURN REST secret (the package's own service is not used).
apt_install coturn
