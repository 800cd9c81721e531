#!/usr/bin/env bash
# The agent on Debian arm64 under emulation: builds (once) a Debian 12 arm64 root file
# system with debootstrap from Debian's arm64 packages (python3, python3-venv,
# python3-pyscard, linux-image-arm64), fetches the project's arm64 wheels on this host,
# copies them into a fresh disk image and boots it with qemu-system-aarch64 and Debian's
# arm64 kernel and initrd. In the guest, scripts/arm64_guest_init.sh (PID 1) installs the
# agent into a venv, and scripts/arm64_guest_measure.py measures the demo gate config,
# cold start to READY=1 and tap latency; then the guest powers off. Prints the figures.
#
# Usage: scripts/arm64_emulation.sh [--taps N] [--smp N] [--mem MB] [--timeout S]
#                                   [--rebuild-rootfs] [--check]
#   --check            only check the tools and the cached state, run nothing
# Needs root and Debian's qemu-system-arm, qemu-user-static, binfmt-support, debootstrap,
# e2fsprogs. Cache: build/arm64/ (ignored by git; ARM64_WORK overrides). Not run by CI:
# building the root file system takes 30-45 min on two shared cores, each run then 3-5 min
# (docs/performance.md, "arm64 under emulation", has the recorded figures).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${ARM64_WORK:-$ROOT/build/arm64}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
HOST_PYTHON=${HOST_PYTHON:-python3}
GUEST_PACKAGES=python3,python3-venv,python3-pyscard,libpcsclite1,pcscd,linux-image-arm64,e2fsprogs
EXTRAS=device,serial,pcsc       # pcsc: Debian's python3-pyscard in the guest (no arm64 wheel)
PIP_EXTRAS=device,serial        # what pip fetches for aarch64 on the host
PURE_SDISTS=sdnotify            # dependencies published only as sdists (pure Python)
# edge-sim imports its FURS simulator, which needs pyjwt: today only the pos extra brings it
TOOL_PACKAGES=pyjwt
PLATFORMS=(manylinux2014_aarch64 manylinux_2_17_aarch64 manylinux_2_28_aarch64
           manylinux_2_34_aarch64 any)
TAPS=20 SMP=2 MEM=2048 TIMEOUT=3600 REBUILD=0 CHECK=0

die() { echo "arm64_emulation: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

parse_args() {
    while [ $# -gt 0 ]; do
        case $1 in
            --taps) TAPS=$2; shift 2 ;;
            --smp) SMP=$2; shift 2 ;;
            --mem) MEM=$2; shift 2 ;;
            --timeout) TIMEOUT=$2; shift 2 ;;
            --rebuild-rootfs) REBUILD=1; shift ;;
            --check) CHECK=1; shift ;;
            -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
    for n in "$TAPS" "$SMP" "$MEM" "$TIMEOUT"; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive whole number"
    done
}

check_tools() {
    local missing=()
    for tool in debootstrap qemu-system-aarch64 mke2fs debugfs update-binfmts; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install qemu-system-arm" \
        "qemu-user-static binfmt-support debootstrap e2fsprogs"
    "$HOST_PYTHON" -m pip --version >/dev/null 2>&1 \
        || die "$HOST_PYTHON has no pip (set HOST_PYTHON to a Python 3.11+ with pip)"
    [ "$(id -u)" = 0 ] || die "run as root (debootstrap and the disk image keep file owners)"
}

enable_binfmt() {
    # debootstrap's second stage runs the arm64 maintainer scripts through qemu-user-static
    [ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/register ] \
        || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || die "cannot mount binfmt_misc (needed to run arm64 binaries while bootstrapping)"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
        || die "qemu-aarch64 is not registered in binfmt_misc (apt-get install qemu-user-static)"
}

unmount_under() {
    # an interrupted debootstrap leaves /proc and /sys mounted in its folder
    findmnt -rn -o TARGET | { grep "^$1/" || true; } | sort -r | xargs -r umount -l
}

add_missing_packages() {
    # a cached root file system made before a package joined GUEST_PACKAGES gets it with apt
    local rootfs=$1 missing=()
    for pkg in ${GUEST_PACKAGES//,/ }; do
        chroot "$rootfs" dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    enable_binfmt
    say "adding ${missing[*]} to the cached root file system"
    nice -n 10 chroot "$rootfs" apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >>"$WORK/debootstrap.log" 2>&1 || die "apt-get install ${missing[*]} in $rootfs failed"
    chroot "$rootfs" apt-get clean
}

build_rootfs() {
    local rootfs=$WORK/rootfs
    if [ "$REBUILD" = 0 ] && [ -f "$rootfs/.edge-complete" ]; then
        say "root file system: cached in $rootfs"
        add_missing_packages "$rootfs"
        return
    fi
    enable_binfmt
    unmount_under "$rootfs.tmp"
    rm -rf "$rootfs" "$rootfs.tmp"
    say "debootstrap --arch=arm64 $SUITE from $MIRROR (once; several minutes)"
    local started=$SECONDS
    nice -n 10 debootstrap --arch=arm64 --variant=minbase --include="$GUEST_PACKAGES" \
        "$SUITE" "$rootfs.tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || die "debootstrap failed: see $WORK/debootstrap.log"
    rm -rf "$rootfs.tmp/var/cache/apt/archives/"*.deb
    echo "$((SECONDS - started))" >"$rootfs.tmp/.edge-complete"
    mv "$rootfs.tmp" "$rootfs"
}

fetch_wheels() {
    local wheels=$WORK/wheels plat=()
    rm -rf "$wheels" && mkdir -p "$wheels"
    for p in "${PLATFORMS[@]}"; do plat+=(--platform "$p"); done
    say "wheels for aarch64 / CPython 3.11 (Debian 12's Python) into $wheels"
    # the project's wheel from a copy of the tree (tracked and untracked, not ignored files),
    # so that the build leaves nothing in the checkout
    local src=$WORK/src
    rm -rf "$src" && mkdir -p "$src"
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
        | tar --null -T - -cf -) | tar -xf - -C "$src"
    "$HOST_PYTHON" -m pip wheel -q --no-deps -w "$wheels" "$src" $PURE_SDISTS
    local project
    project=$(ls "$wheels"/edge_suite-*.whl)
    "$HOST_PYTHON" -m pip download -q --dest "$wheels" --find-links "$wheels" \
        --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 "${plat[@]}" \
        "$project[$PIP_EXTRAS]" $TOOL_PACKAGES
}

make_image() {
    local rootfs=$WORK/rootfs payload=$WORK/rootfs/opt/edge-arm64
    rm -rf "$payload" "$rootfs/opt/edge" && mkdir -p "$payload"
    cp -r "$WORK/wheels" "$payload/"
    install -m 0755 "$ROOT/scripts/arm64_guest_init.sh" "$payload/guest-init.sh"
    cp "$ROOT/scripts/arm64_guest_measure.py" "$payload/"
    echo "$EXTRAS" >"$payload/extras"
    echo "$TOOL_PACKAGES" >"$payload/tool-packages"
    echo "$TAPS" >"$payload/taps"
    say "disk image $WORK/disk.img (a fresh copy of the root file system and the payload)"
    rm -f "$WORK/disk.img"
    mke2fs -q -F -t ext4 -L edge-arm64 -d "$rootfs" "$WORK/disk.img" 3G >&2
}

boot() {
    local kernel initrd
    kernel=$(ls "$WORK"/rootfs/boot/vmlinuz-* | sort -V | tail -1)
    initrd=$(ls "$WORK"/rootfs/boot/initrd.img-* | sort -V | tail -1)
    say "qemu-system-aarch64 -M virt -cpu cortex-a72 -smp $SMP -m $MEM, $(basename "$kernel")"
    say "host load before: $(uptime)"
    local started=$SECONDS
    nice -n 10 timeout "$TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a72 \
        -smp "$SMP" -m "$MEM" -display none -monitor none -no-reboot -nic none \
        -serial "file:$WORK/console.log" -kernel "$kernel" -initrd "$initrd" \
        -append "root=/dev/vda rw console=ttyAMA0 panic=1 loglevel=4 \
init=/opt/edge-arm64/guest-init.sh" \
        -drive "file=$WORK/disk.img,format=raw,if=virtio" \
        || die "qemu-system-aarch64 stopped with $? (timeout $TIMEOUT s?): see $WORK/console.log"
    BOOT_WALL=$((SECONDS - started))
    say "host load after: $(uptime)"
}

report() {
    local line
    line=$(grep -a '^EDGE-ARM64-RESULT ' "$WORK/console.log" | tail -1 | cut -d' ' -f2-) || true
    if [ -z "$line" ]; then
        grep -a 'EDGE-ARM64' "$WORK/console.log" >&2 || tail -20 "$WORK/console.log" >&2
        die "the guest reported no result: see $WORK/console.log"
    fi
    echo "$line" >"$WORK/result.json"
    "$HOST_PYTHON" - "$WORK/result.json" "$BOOT_WALL" "$(cat /proc/loadavg)" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); m = r["measure"]
print(f"Debian 12 arm64 guest under qemu-system-aarch64 (TCG), {m['cpus']} vCPUs, "
      f"Python {m['python']} on {m['machine']}")
print(f"  whole run, qemu start to power-off      {sys.argv[2]} s")
print(f"  kernel boot to init                     {r['init_after_kernel_s']} s")
print(f"  install (venv + pip from local wheels)  {r['install_s']} s")
print(f"  pyscard (Debian python3-pyscard)        {r['pyscard']}")
print(f"  edge-agent demo-config --kind gate      {m['demo_config_s']} s")
print(f"  cold start to READY=1                   {m['cold_start_ready_s']} s")
print(f"  edge-sim members ({m['members_loaded']})                  {m['members_load_s']} s")
print(f"  one 'edge-sim tap' command (wall)       {m['cli_tap_s']} s "
      f"(granted: {m['cli_tap_granted']})")
print(f"  decision latency, median of {m['taps']} taps    "
      f"{m['decision_latency_ms']['median']} ms (max {m['decision_latency_ms']['max']} ms, "
      f"{m['granted']} granted)")
print(f"  control-socket round trip, median       {m['round_trip_ms']['median']} ms")
print(f"  guest load (1/5/15 min)                 {' '.join(m['loadavg'])}")
print(f"  host load after (1/5/15 min)            {' '.join(sys.argv[3].split()[:3])}")
EOF
}

check_state() {
    echo "tools: ok; cache: $WORK"
    [ -f "$WORK/rootfs/.edge-complete" ] && echo "root file system: cached" \
        || echo "root file system: not built yet"
    [ -f "$WORK/result.json" ] && echo "last result: $(cat "$WORK/result.json")" || true
}

main() {
    parse_args "$@"
    check_tools
    mkdir -p "$WORK"
    if [ "$CHECK" = 1 ]; then check_state; return; fi
    build_rootfs
    fetch_wheels
    make_image
    boot
    report
}

main "$@"
