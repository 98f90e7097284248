#!/usr/bin/env bash
# Makes sure the local infrastructure clinicnet runs and tests against is up:
#   - PostgreSQL on 127.0.0.1:5432, user postgres without a password (trust), btree_gist available;
#   - NATS with JetStream on 127.0.0.1:4222.
# Missing pieces are installed from the distribution's packages (apt-get, as root) and started.
# Idempotent: when both already answer it changes nothing. Prints one line per component.
# Used by `make run` and `make test`.
set -euo pipefail

readonly PG_HOST=127.0.0.1 PG_PORT=5432
readonly NATS_HOST=127.0.0.1 NATS_PORT=4222
readonly WAIT_SECONDS=30

log() { printf 'ensure-infra: %s\n' "$*" >&2; }
die() {
	printf 'ensure-infra: error: %s\n' "$*" >&2
	exit 1
}

# Root runs commands as they are; others go through a password-less sudo when there is one.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO=(sudo -n)
	else
		SUDO=(__not_root__)
	fi
fi
as_root() {
	if [[ ${SUDO[0]-} == __not_root__ ]]; then
		die "need root (or password-less sudo) to run: $*"
	fi
	"${SUDO[@]}" "$@"
}

# Whether host:port accepts a TCP connection (bash's /dev/tcp, 2 s at most).
tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# Retries "$@" every 0.2 s for WAIT_SECONDS.
wait_until() {
	local deadline=$((SECONDS + WAIT_SECONDS))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
	if [[ $APT_UPDATED -eq 0 ]]; then
		log "apt-get update"
		as_root apt-get update -qq
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---------------------------------------------------------------------------------- PostgreSQL

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }
pg_query() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -XAtqc "$1"; }

# The newest installed server major version (/usr/lib/postgresql/<ver>/bin/postgres).
pg_newest_version() {
	local dir
	for dir in /usr/lib/postgresql/*/bin/postgres; do
		if [[ -x $dir ]]; then basename "$(dirname "$(dirname "$dir")")"; fi
	done | sort -n | tail -n 1
}

# Trust for local tests: no passwords on the socket and on loopback. Development machines only.
pg_trust_loopback() {
	local ver=$1 name=$2 hba="/etc/postgresql/$1/$2/pg_hba.conf"
	log "configuring trust authentication on the socket and loopback in $hba"
	as_root tee "$hba" >/dev/null <<-'EOF'
		# Written by clinicnet's scripts/ensure-infra.sh for a development/test cluster:
		# no passwords, local connections only.
		local   all   all                  trust
		host    all   all   127.0.0.1/32   trust
		host    all   all   ::1/128        trust
	EOF
}

ensure_postgres() {
	local how="already running"
	if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
		apt_install postgresql-client
	fi
	if ! pg_ready; then
		local fresh=0
		if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z $(pg_newest_version) ]]; then
			apt_install postgresql postgresql-contrib
			# The package may just have created (and on systemd machines started) a cluster.
			fresh=1
		fi
		# A cluster configured for port 5432, else a new one: "<ver> main", or "<ver> clinicnet"
		# when main exists on another port.
		local ver="" name="" status=""
		read -r ver name status < <(pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }') || true
		if [[ -z $ver ]]; then
			ver=$(pg_newest_version)
			[[ -n $ver ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
			name=main
			if [[ -d /etc/postgresql/$ver/main ]]; then name=clinicnet; fi
			log "creating cluster $ver/$name on port $PG_PORT"
			as_root pg_createcluster -p "$PG_PORT" "$ver" "$name" >/dev/null
			status=down
			fresh=1
		fi
		if [[ $fresh -eq 1 ]]; then
			pg_trust_loopback "$ver" "$name"
		fi
		if [[ $status == online* ]]; then
			as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
		else
			log "starting cluster $ver/$name"
			as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start
		fi
		wait_until pg_ready || die "PostgreSQL $ver/$name did not accept connections on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s (see /var/log/postgresql/postgresql-$ver-$name.log)"
		how="started cluster $ver/$name"
	fi
	local version
	version=$(pg_query "show server_version") ||
		die "PostgreSQL answers on $PG_HOST:$PG_PORT but user postgres cannot log in without a password; allow trust on loopback in pg_hba.conf, or point the tests elsewhere with CLINICNET_TEST_PG_URL"
	echo "postgresql: ok, PostgreSQL ${version%% *} on $PG_HOST:$PG_PORT ($how)"
}

ensure_btree_gist() {
	if [[ $(pg_query "select 1 from pg_available_extensions where name = 'btree_gist'") != 1 ]]; then
		apt_install postgresql-contrib
		[[ $(pg_query "select 1 from pg_available_extensions where name = 'btree_gist'") == 1 ]] ||
			die "the btree_gist extension is not available on $PG_HOST:$PG_PORT (install the server's contrib modules)"
	fi
	echo "btree_gist: ok, extension available"
}

# ---------------------------------------------------------------------------------------- NATS

nats_open() { tcp_open "$NATS_HOST" "$NATS_PORT"; }

# Speaks just enough of the NATS protocol to ask JetStream for the account info. Prints the
# server's INFO line and the reply; fails when JetStream does not answer.
nats_probe() {
	# shellcheck disable=SC2016 # the script is expanded by the inner bash
	timeout 10 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		IFS= read -r -t 3 info <&3 || exit 1
		printf "%s\n" "$info"
		printf "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB _INBOX.ensure_infra 1\r\nPUB \$JS.API.INFO _INBOX.ensure_infra 0\r\n\r\nPING\r\n" >&3
		while IFS= read -r -t 3 line <&3; do
			case $line in
			*account_info_response*) printf "%s\n" "$line"; exit 0 ;;
			-ERR*) printf "%s\n" "$line"; exit 1 ;;
			esac
		done
		exit 1
	' nats-probe "$NATS_HOST" "$NATS_PORT"
}

ensure_nats() {
	local how="already running"
	if ! nats_open; then
		local bin
		bin=$(command -v nats-server || true)
		[[ -z $bin && -x /usr/sbin/nats-server ]] && bin=/usr/sbin/nats-server
		if [[ -z $bin ]]; then
			apt_install nats-server
			bin=$(command -v nats-server || echo /usr/sbin/nats-server)
		fi
		local store=/var/lib/nats-server logfile=/var/log/nats-server.log pidfile=/run/clinicnet-nats-server.pid
		if [[ $(id -u) -ne 0 ]]; then
			# Without root: a store, log and pid file of the user's own.
			store=${XDG_STATE_HOME:-$HOME/.local/state}/clinicnet/nats
			logfile=$store/nats-server.log
			pidfile=$store/nats-server.pid
		fi
		mkdir -p "$store"
		log "starting $bin on $NATS_HOST:$NATS_PORT (JetStream store $store)"
		# The pid file makes --oknodo look at this instance only, not at other nats-server
		# processes (such as the tests' private ones on other ports).
		start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$pidfile" \
			--exec "$bin" -- -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$store" -l "$logfile"
		wait_until nats_open || die "nats-server did not accept connections on $NATS_HOST:$NATS_PORT within ${WAIT_SECONDS}s (see $logfile)"
		how="started"
	fi
	local probe version
	probe=$(nats_probe) || die "NATS answers on $NATS_HOST:$NATS_PORT but JetStream does not (was it started without -js?)"
	version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$probe" | head -n 1)
	if grep -q '"error"' <<<"$probe"; then
		die "NATS on $NATS_HOST:$NATS_PORT: JetStream answered with an error: $(tail -n 1 <<<"$probe")"
	fi
	echo "nats:       ok, nats-server ${version:-?} with JetStream on $NATS_HOST:$NATS_PORT ($how)"
}

ensure_postgres
ensure_btree_gist
ensure_nats
