#!/bin/sh
# PID 1 of the Debian arm64 guest that scripts/arm64_emulation.sh boots under
# qemu-system-aarch64 (kernel command line: init=/opt/edge-arm64/guest-init.sh).
# Installs the agent from the wheels copied in (no network in the guest), measures it with
# arm64_guest_measure.py, prints one "EDGE-ARM64-RESULT {json}" line on the serial console,
# keeps it in /opt/edge-arm64/result.json and powers the machine off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
PAYLOAD=/opt/edge-arm64
VENV=/opt/edge/venv

# the initramfs hands over /proc, /sys, /dev and /run already mounted
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mountpoint -q /run || mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /

now() { cut -d' ' -f1 /proc/uptime; }
fail() {
    echo "EDGE-ARM64-FAILED $*"
    sync
    echo o >/proc/sysrq-trigger
    sleep 60
}

BOOTED=$(now)
echo "EDGE-ARM64 init started $BOOTED s after the kernel; $(uname -srm); $(python3 -V)"
WHEEL=$(ls "$PAYLOAD"/wheels/edge_suite-*.whl) || fail "no edge_suite wheel in $PAYLOAD/wheels"
EXTRAS=$(cat "$PAYLOAD/extras")

T0=$(now)
python3 -m venv --system-site-packages "$VENV" || fail "python3 -m venv failed"
# shellcheck disable=SC2046 # the tool packages are whitespace-separated names
"$VENV/bin/pip" install --no-index --find-links "$PAYLOAD/wheels" "$WHEEL[$EXTRAS]" \
    $(cat "$PAYLOAD/tool-packages") \
    >/tmp/pip.log 2>&1 || { tail -5 /tmp/pip.log; fail "pip install failed"; }
T1=$(now)
INSTALL_S=$(awk "BEGIN{print $T1 - $T0}")
echo "EDGE-ARM64 installed edge-suite[$EXTRAS] in $INSTALL_S s"

# pyscard from Debian (no arm64 wheel on PyPI) talking to Debian's pcscd (no reader attached)
pcscd 2>/dev/null
PCSC=$(timeout 120 "$VENV/bin/python" -c 'import smartcard, smartcard.System as s
print(f"pyscard at {smartcard.__path__[0]}, pcscd readers: {s.readers()}")' 2>&1 | tail -1)
"$VENV/bin/edge-agent" --help >/dev/null || fail "edge-agent --help failed"

"$VENV/bin/python" "$PAYLOAD/arm64_guest_measure.py" --workdir /var/tmp/edge-measure \
    --taps "$(cat "$PAYLOAD/taps")" >/tmp/measure.json 2>/tmp/measure.err \
    || { tail -5 /tmp/measure.err; tail -20 /var/tmp/edge-measure/agent.log; fail "measure failed"; }

RESULT=$(printf '{"init_after_kernel_s": %s, "install_s": %s, "pyscard": "%s", "measure": %s}' \
    "$BOOTED" "$INSTALL_S" "$PCSC" "$(cat /tmp/measure.json)")
echo "$RESULT" >"$PAYLOAD/result.json"
echo "EDGE-ARM64-RESULT $RESULT"
sync
echo o >/proc/sysrq-trigger
sleep 60
