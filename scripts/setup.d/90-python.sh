# The webhook permissions provider's worked example (docs/examples/permissions_service.py)
# is the operator service tests/it/webhook.rs runs: Python 3 from Debian.
apt_install python3
