#!/usr/bin/env bash
# Starts the four services on this machine against the local PostgreSQL and NATS, each with its
# own database, and stops them on Ctrl-C. Safe to run again: databases are created only when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE_URL=${PG_ADMIN_URL%/*}
export NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export JWT_HS256_SECRET=${JWT_HS256_SECRET:-clinicnet-development-secret}
export LOG_FORMAT=${LOG_FORMAT:-json}
RUN_DIR=.run
mkdir -p "$RUN_DIR"

declare -A PORTS=([directory]=50051 [appointments]=50052 [insurance]=50053 [notifications]=50054)
SERVICES=(directory appointments insurance notifications)
PIDS=()

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping clinicnet…"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped."
}
trap stop_all INT TERM EXIT

for svc in "${SERVICES[@]}"; do
  db="clinicnet_${svc}"
  if ! psql "$PG_ADMIN_URL" -Atc "SELECT 1 FROM pg_database WHERE datname = '${db}'" | grep -q 1; then
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE ${db}"
  fi
  DATABASE_URL="${PG_BASE_URL}/${db}" LISTEN_ADDR="127.0.0.1:${PORTS[$svc]}" \
    "target/debug/${svc}" >"$RUN_DIR/${svc}.log" 2>&1 &
  PIDS+=($!)
done

wait_serving() {
  local svc=$1 port=$2
  for _ in $(seq 1 120); do
    if grep -q '"serving"' "$RUN_DIR/${svc}.log" 2>/dev/null; then return 0; fi
    if ! kill -0 "${PIDS[$3]}" 2>/dev/null; then
      echo "${svc} exited; last log lines:" >&2; tail -n 20 "$RUN_DIR/${svc}.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "${svc} did not start on port ${port}" >&2; return 1
}
for i in "${!SERVICES[@]}"; do
  wait_serving "${SERVICES[$i]}" "${PORTS[${SERVICES[$i]}]}" "$i"
done

cat <<MSG

clinicnet is running:
  directory      127.0.0.1:50051
  appointments   127.0.0.1:50052
  insurance      127.0.0.1:50053
  notifications  127.0.0.1:50054
Every port serves gRPC health, reflection and clinicnet.ops.v1.EventOpsService.
Logs: ${RUN_DIR}/<service>.log   Development token secret: JWT_HS256_SECRET=${JWT_HS256_SECRET}
Press Ctrl-C to stop.
MSG
wait -n "${PIDS[@]}" || true
