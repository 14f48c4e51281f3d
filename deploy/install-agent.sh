#!/usr/bin/env bash
# Install (or upgrade) the shelterwatch agent on a Raspberry-Pi-class box, as root.
#
#   deploy/install-agent.sh [--dry-run] [--from SOURCE] [--site SITE.yaml]
#                           [--password-file FILE] [--ack-key-file FILE] [--ca-file FILE]
#                           [--no-start] [--boot-after N]
#
# SOURCE is this checkout (default) or a built wheel. The script is idempotent: run it again
# to upgrade; what is already in place is left as it is. --dry-run prints each step and changes
# nothing. Steps: a system user, a venv under /opt/shelterwatch with `pip install '.[agent]'`,
# configuration under /etc/shelterwatch (read-only at run time), data under /var/lib/shelterwatch
# (the data partition), the systemd unit installed and enabled. docs/deployment-pi.md explains.
# --password-file and --ack-key-file: the broker password and the ack key enrol-agent wrote
# (mqtt-password, ack-key), installed readable by the agent only.
# --boot-after N: on a replaced SD card, continue the boot counter after N (the old card's last
# boot, as GET /api/v1/agents shows it). Optional: the collector accepts a new stream's births
# whatever their boot.
#
# On a booted box the unit is then (re)started. In a chroot or an image build (no booted
# systemd: no /run/systemd/system, or SYSTEMD_OFFLINE=1) the unit is enabled offline with
# `systemctl --root` and nothing is started: the box starts it at its first boot. No network
# at hand (an image build): PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR, DIR holding the agent's wheels.
#
# Paths can be moved for packaging or a trial run: SW_PREFIX, SW_ETC, SW_DATA, SW_UNIT_DIR,
# SW_USER, SW_PYTHON. SW_UNIT_DIR ends in /etc/systemd/system; below another root than /, the
# unit is enabled for that root, offline.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="${SW_PREFIX:-/opt/shelterwatch}"
etc="${SW_ETC:-/etc/shelterwatch}"
data="${SW_DATA:-/var/lib/shelterwatch}"
unit_dir="${SW_UNIT_DIR:-/etc/systemd/system}"
user="${SW_USER:-shelterwatch}"
python="${SW_PYTHON:-python3}"
unit="shelterwatch-agent.service"
source="$(dirname "$here")"
dry_run=0
start=1
site=""
password_file=""
ack_key_file=""
ca_file=""
boot_after=""

usage() {
    sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

die() {
    echo "install-agent: error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --from) source="${2:?--from needs a path}"; shift ;;
        --site) site="${2:?--site needs a file}"; shift ;;
        --password-file) password_file="${2:?--password-file needs a file}"; shift ;;
        --ack-key-file) ack_key_file="${2:?--ack-key-file needs a file}"; shift ;;
        --ca-file) ca_file="${2:?--ca-file needs a file}"; shift ;;
        --no-start) start=0 ;;
        --boot-after) boot_after="${2:?--boot-after needs a number}"; shift ;;
        -h | --help) usage 0 ;;
        *) echo "install-agent: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done

# Every change goes through run: printed under --dry-run, executed otherwise.
run() {
    if [ "$dry_run" = 1 ]; then
        echo "would run: $*"
    else
        echo "+ $*"
        "$@"
    fi
}

# Put a file in place with owner and mode, only when its content differs (idempotent).
put() {
    local from="$1" to="$2" owner="$3" mode="$4"
    if [ -f "$to" ] && cmp -s "$from" "$to"; then
        echo "unchanged: $to"
        return
    fi
    if [ -f "$to" ]; then
        run cp -p "$to" "$to.previous"
    fi
    run install -o "${owner%%:*}" -g "${owner##*:}" -m "$mode" "$from" "$to"
}

have_group() {
    getent group "$1" >/dev/null 2>&1
}

[ "$dry_run" = 1 ] || [ "$(id -u)" = 0 ] || die "run as root (or with --dry-run to see the steps)"
for f in "$site" "$password_file" "$ack_key_file" "$ca_file"; do
    [ -z "$f" ] || [ -f "$f" ] || die "no such file: $f"
done
case "$boot_after" in
    "" | *[!0-9]*) [ -z "$boot_after" ] || die "--boot-after: expected a number, got $boot_after" ;;
esac
[ -f "$source/pyproject.toml" ] || [ "${source%.whl}" != "$source" ] \
    || die "--from: $source is neither a shelterwatch checkout nor a wheel"
[ -e "$source" ] || die "no such source: $source"
case "$unit_dir" in
    */etc/systemd/system) sysroot="${unit_dir%/etc/systemd/system}" ;;
    *) die "SW_UNIT_DIR: expected a folder ending in /etc/systemd/system, got $unit_dir" ;;
esac
sysroot="${sysroot:-/}"
command -v systemctl >/dev/null 2>&1 \
    || die "systemctl not found: the agent runs under systemd (install systemd first)"
# A booted systemd is what sd_booted() tests: /run/systemd/system. Without one (a chroot, an
# image build, a container) systemctl cannot reload or start anything: daemon-reload fails with
# "System has not been booted with systemd". A unit installed for another root is never the
# running manager's business either.
if [ -d /run/systemd/system ] && [ "${SYSTEMD_OFFLINE:-0}" != 1 ] && [ "$sysroot" = / ]; then
    booted=1
else
    booted=0
fi
source="$(cd "$(dirname "$source")" && pwd)/$(basename "$source")"
if [ "$dry_run" = 0 ] && [ ! -w "$(dirname "$prefix")" ]; then
    die "$(dirname "$prefix") is not writable: is the root file system read-only? \
remount it read-write for the install (docs/deployment-pi.md)"
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11 (apt-get install python3 python3-venv)"

echo "== user $user"
if id -u "$user" >/dev/null 2>&1; then
    echo "exists: user $user"
else
    run useradd --system --user-group --home-dir "$data" --no-create-home \
        --shell /usr/sbin/nologin "$user"
fi
# GPIO contacts and Modbus RTU serial lines (Raspberry Pi OS groups; absent elsewhere).
for group in gpio dialout; do
    if have_group "$group" && ! id -nG "$user" 2>/dev/null | tr ' ' '\n' | grep -qx "$group"; then
        run usermod -a -G "$group" "$user"
    fi
done

echo "== folders"
run install -d -o root -g root -m 0755 "$prefix"
run install -d -o root -g "$user" -m 0750 "$etc"
run install -d -o "$user" -g "$user" -m 0750 "$data"

echo "== venv and package ($source)"
if [ -x "$prefix/venv/bin/python" ]; then
    echo "exists: $prefix/venv"
else
    run "$python" -m venv "$prefix/venv"
fi
# The agent extra only: no FastAPI, no SQLAlchemy on the box.
run "$prefix/venv/bin/pip" install --disable-pip-version-check --no-cache-dir --upgrade \
    "$source[agent]"
if [ "${source%.whl}" != "$source" ]; then
    # pip skips a wheel whose version is already installed, and a new build need not change
    # the version: reinstall the agent itself (not its dependencies) so an upgrade runs the
    # new code. A checkout is always rebuilt and reinstalled.
    run "$prefix/venv/bin/pip" install --disable-pip-version-check --no-cache-dir --no-deps \
        --force-reinstall "$source"
fi

echo "== configuration ($etc)"
[ -z "$site" ] || put "$site" "$etc/site.yaml" "root:$user" 0640
[ -z "$password_file" ] || put "$password_file" "$etc/mqtt-password" "root:$user" 0640
[ -z "$ack_key_file" ] || put "$ack_key_file" "$etc/ack-key" "root:$user" 0640
[ -z "$ca_file" ] || put "$ca_file" "$etc/ca.pem" "root:root" 0644
if [ -f "$etc/site.yaml" ] || [ -n "$site" ]; then
    run "$prefix/venv/bin/shelterwatch" agent validate "${site:-$etc/site.yaml}"
fi

if [ -n "$boot_after" ]; then
    # The collector ignores a birth whose boot is below the last one it saw from this agent;
    # a new card starts counting at 1, so it continues after the old card's count instead.
    current="$(cat "$data/boot" 2>/dev/null || echo 0)"
    if [ "${current:-0}" -le "$boot_after" ]; then
        seed="$(mktemp)"
        echo "$boot_after" >"$seed"
        put "$seed" "$data/boot" "$user:$user" 0640
        rm -f "$seed"
    else
        echo "unchanged: $data/boot ($current, already past $boot_after)"
    fi
fi

echo "== systemd unit"
put "$here/$unit" "$unit_dir/$unit" root:root 0644
if [ "$booted" = 1 ]; then
    run systemctl daemon-reload
    run systemctl enable "$unit"
else
    # Offline, systemctl makes the links the unit's [Install] section asks for
    # (multi-user.target.wants/) under the root, exactly as a booted enable would.
    if [ "$sysroot" = / ]; then
        echo "no booted systemd (chroot or image build): enabling offline, no reload, no start"
    else
        echo "unit for the root $sysroot: enabling offline, no reload, no start"
    fi
    run systemctl --root="$sysroot" enable "$unit"
fi
have_site=0
if [ -f "$etc/site.yaml" ] || [ -n "$site" ]; then
    have_site=1
fi
if [ "$booted" = 0 ] && [ "$have_site" = 1 ]; then
    echo "not started: the unit is enabled and starts at the box's next boot"
elif [ "$booted" = 0 ]; then
    echo "not started: the unit is enabled; put the site file in $etc/site.yaml before it boots"
elif [ "$start" = 0 ]; then
    echo "not started (--no-start): systemctl start $unit"
elif [ "$have_site" = 1 ]; then
    # restart, not start: an upgrade must run the new code.
    run systemctl restart "$unit"
    echo "check it: $prefix/venv/bin/shelterwatch agent check --config $etc/site.yaml"
else
    echo "not started: put the site file in $etc/site.yaml, then: systemctl start $unit"
fi
