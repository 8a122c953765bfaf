# --base-path behind a real reverse proxy (tests/it/base_path.rs): Debian's nginx, which
# the test starts on a loopback port of its own (the package's own service is not used).
apt_install nginx
