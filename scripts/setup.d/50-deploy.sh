# The deployment files (tests/it/deploy.rs): systemd-analyze checks deploy/peer-calls.service.
apt_install systemd
