#!/usr/bin/env bash
# Install the database servers/clients the test suite needs (Debian/Ubuntu).
# Idempotent: when everything is present it does nothing, not even apt-get update.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
have psql || missing+=(postgresql-client)
# mariadbd lives in /usr/sbin, which is not on every user's PATH.
{ [ -x /usr/sbin/mariadbd ] || have mariadbd; } || missing+=(mariadb-server)
have mariadb || missing+=(mariadb-client)
have sqlite3 || missing+=(sqlite3)
[ -x /usr/bin/time ] || missing+=(time)  # GNU time: peak memory in bench/ and its smoke test
# The topology tests: PgBouncer and pgpool-II in front of PostgreSQL, and a Galera cluster (galera-4 is the
# provider library mariadb-server pulls in; rsync is its state-transfer method).
{ [ -x /usr/sbin/pgbouncer ] || have pgbouncer; } || missing+=(pgbouncer)
{ [ -x /usr/sbin/pgpool ] || have pgpool; } || missing+=(pgpool2)
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
# A Patroni cluster (its DCS an etcd member) with HAProxy in front: the failover tests.
have patroni || missing+=(patroni)
{ [ -x /usr/bin/etcd ] || have etcd; } || missing+=(etcd-server)
{ [ -x /usr/sbin/haproxy ] || have haproxy; } || missing+=(haproxy)
have rsync || missing+=(rsync)
# MariaDB's Spider engine: the test that migrate refuses sharded tables loads it at run time.
[ -e /usr/lib/mysql/plugin/ha_spider.so ] || missing+=(mariadb-plugin-spider)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages, run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

# The packages' own services may fail to start (e.g. policy-rc.d denies it in
# containers); that's fine, tests start their own servers on free ports.
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

# Only the binaries of these are wanted: their packages enable services (pgpool2, etcd, haproxy, patroni) on
# fixed ports that would stay up on every boot. Stop and disable each one installed now, where it could start.
for package in pgpool2 etcd-server haproxy patroni; do
    [[ " ${missing[*]} " == *" $package "* ]] || continue
    service=${package%-server}  # etcd-server's service is etcd
    if [ -d /run/systemd/system ]; then
        systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    else
        invoke-rc.d "$service" stop >/dev/null 2>&1 || true
        update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done
