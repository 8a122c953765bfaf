# `peer-calls play` tests (tests/it/play.rs): Debian's ffmpeg encodes the test pattern and the
# tone that play publishes (libvpx VP8/VP9, libx264 and libopus, over RTP and into IVF and
# Ogg files).
apt_install ffmpeg
