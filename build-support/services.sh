#!/usr/bin/env bash
# Make sure the real databases the integration tests use are answering:
#   MariaDB    on ${PYKATIB_MYSQL_PORT:-3306}     (user root, no password)
#   PostgreSQL on ${PYKATIB_POSTGRES_PORT:-5432}  (trust auth, roles postgres and root)
# A server already answering is used as is. Otherwise Debian's package is installed if missing
# and a private instance is started on that port with its data under $PYKATIB_CACHE; it keeps
# running after this script (the next run finds it answering).
set -euo pipefail

CACHE=${PYKATIB_CACHE:-$HOME/.cache/pykatib}
MYSQL_PORT=${PYKATIB_MYSQL_PORT:-3306}
POSTGRES_PORT=${PYKATIB_POSTGRES_PORT:-5432}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf 'services: %s\n' "$*" >&2; }
answering() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # port, name, seconds
  for _ in $(seq 1 $(($3 * 10))); do answering "$1" && return 0; sleep 0.1; done
  log "$2 did not start on port $1; its log is above"; return 1
}
apt_install() {
  log "installing $* from Debian"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_mariadb() {
  if answering "$MYSQL_PORT"; then return 0; fi
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
  local dir=$CACHE/mariadb-$MYSQL_PORT
  if [ ! -d "$dir/data/mysql" ]; then
    log "initialising a private MariaDB in $dir"
    mkdir -p "$dir/data"
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; return 1; }
  fi
  log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  nohup /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-log-bin \
    --innodb-buffer-pool-size=256M --character-set-server=utf8mb4 --max-connections=500 \
    >"$dir/mysqld.log" 2>&1 &
  wait_for "$MYSQL_PORT" MariaDB 60 || { tail -20 "$dir/mysqld.log" >&2; return 1; }
  # Tests connect over TCP as root@127.0.0.1 with no password.
  mariadb --socket="$dir/mysqld.sock" -uroot -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
     CREATE DATABASE IF NOT EXISTS test;"
}

ensure_postgres() {
  if answering "$POSTGRES_PORT"; then return 0; fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  local bin; bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  local dir=$CACHE/postgres-$POSTGRES_PORT
  # PostgreSQL refuses to run as root; use the postgres account Debian's package creates.
  local as=(); local user; user=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || apt_install postgresql
    as=(runuser -u postgres --); user=postgres
  fi
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initialising a private PostgreSQL in $dir"
    "${as[@]}" "$bin/initdb" -D "$dir/data" --auth=trust --username=postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  log "starting PostgreSQL on 127.0.0.1:$POSTGRES_PORT"
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $POSTGRES_PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >&2 \
    || { tail -20 "$dir/postgres.log" >&2; return 1; }
  "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -qc \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END \$\$;" >&2
  : "$user"
}

ensure_mariadb
ensure_postgres
log "MariaDB on :$MYSQL_PORT and PostgreSQL on :$POSTGRES_PORT are answering"
