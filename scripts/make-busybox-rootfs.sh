#!/usr/bin/env bash
# Makes a minimal busybox root filesystem in $1 from Debian's busybox-static (/bin/busybox):
# every applet as a symlink, /etc/passwd and /etc/group, /tmp with mode 1777.
set -euo pipefail
dest=${1:?usage: make-busybox-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
rm -rf "$dest"
mkdir -p "$dest"/{bin,etc,tmp,root,home,proc,sys,dev,var,usr/bin,usr/sbin,sbin}
cp "$bb" "$dest/bin/busybox"
chmod 0755 "$dest/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf /bin/busybox "$dest/bin/$applet"
done
cat > "$dest/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$dest/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
chmod 1777 "$dest/tmp"
chmod 0700 "$dest/root"
# Fixed timestamps keep the base image reproducible.
find "$dest" -exec touch -h -d @1700000000 {} +
