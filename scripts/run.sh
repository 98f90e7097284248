#!/usr/bin/env bash
# The whole network on this machine, shown working: a local mail sink and trace viewer, the four
# services (each with its own database), the Miami demo network seeded through the public API,
# two weeks of availability, the demo payer's integrator, and one patient's journey. Ctrl-C stops
# every process this script started and nothing else. Safe to run again: each run starts from
# fresh databases and its own nats-server (store under .run/nats), so a run never inherits events or
# schemas from an earlier build, nor shares durable consumers with tests on the machine's NATS.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE_URL=${PG_ADMIN_URL%/*}
NATS_ADDR=127.0.0.1:4223
export NATS_URL=nats://$NATS_ADDR
export JWT_HS256_SECRET=${JWT_HS256_SECRET:-clinicnet-development-secret}
export LOG_FORMAT=${LOG_FORMAT:-json}
RUN_DIR=.run
CLINICCTL=target/debug/clinicctl
MAIL_ADDR=127.0.0.1:2525
OTLP_ADDR=127.0.0.1:4317
DEMO_PAYER=suncoast-health
mkdir -p "$RUN_DIR/mail" "$RUN_DIR/traces"

declare -A PORTS=([directory]=50051 [appointments]=50052 [insurance]=50053 [notifications]=50054)
SERVICES=(directory appointments insurance notifications)
PIDS=()     # every process started here, and only those, are stopped on exit
SVC_PIDS=() # the services, in SERVICES order

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping clinicnet…"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped."
}
trap stop_all INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }
for addr in "$NATS_ADDR" "$MAIL_ADDR" "$OTLP_ADDR" 127.0.0.1:50051 127.0.0.1:50052 127.0.0.1:50053 127.0.0.1:50054; do
  if ! port_free "$addr"; then
    echo "$addr is already in use (is another \`make run\` still running?)" >&2
    exit 1
  fi
done

# The network's own JetStream server, fresh for every run.
rm -rf "$RUN_DIR/nats" "$RUN_DIR/integrator.cursor"
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
"$NATS_SERVER" -js -a "${NATS_ADDR%:*}" -p "${NATS_ADDR#*:}" -sd "$RUN_DIR/nats" >"$RUN_DIR/nats.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do port_free "$NATS_ADDR" || break; sleep 0.1; done

# Development helpers first, so the services can deliver mail and export traces from the start.
"$CLINICCTL" mail-sink --listen "$MAIL_ADDR" --dir "$RUN_DIR/mail" >"$RUN_DIR/mail-sink.log" 2>&1 &
PIDS+=($!)
"$CLINICCTL" traces --listen "$OTLP_ADDR" --dir "$RUN_DIR/traces" --idle-ms 1500 >"$RUN_DIR/traces.log" 2>&1 &
PIDS+=($!)

export OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_ADDR"
for svc in "${SERVICES[@]}"; do
  db="clinicnet_${svc}"
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" -c "CREATE DATABASE ${db}"
  DATABASE_URL="${PG_BASE_URL}/${db}" LISTEN_ADDR="127.0.0.1:${PORTS[$svc]}" \
    SMTP_URL="smtp://$MAIL_ADDR" SMTP_STARTTLS=off \
    "target/debug/${svc}" >"$RUN_DIR/${svc}.log" 2>&1 &
  PIDS+=($!)
  SVC_PIDS+=($!)
done

wait_serving() {
  local svc=$1 port=$2
  for _ in $(seq 1 120); do
    if grep -q '"serving"' "$RUN_DIR/${svc}.log" 2>/dev/null; then return 0; fi
    if ! kill -0 "${SVC_PIDS[$3]}" 2>/dev/null; then
      echo "${svc} exited; last log lines:" >&2; tail -n 20 "$RUN_DIR/${svc}.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "${svc} did not start on port ${port}" >&2; return 1
}
for i in "${!SERVICES[@]}"; do
  wait_serving "${SERVICES[$i]}" "${PORTS[${SERVICES[$i]}]}" "$i"
done
echo "clinicnet is up: directory :50051, appointments :50052, insurance :50053, notifications :50054"

# The demo, driven through clinicctl like a partner clinic, an integrator and ops would.
unset OTEL_EXPORTER_OTLP_ENDPOINT
OPS_TOKEN=$("$CLINICCTL" token mint --role ops --subject make-run)
INTEGRATOR_TOKEN=$("$CLINICCTL" token mint --role integrator --payer "$DEMO_PAYER" --subject make-run-integrator)
export CLINICNET_TOKEN=$OPS_TOKEN

echo
echo "== seeding the Miami network and two weeks of availability"
OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_ADDR" "$CLINICCTL" seed miami --days 14

CLINICNET_TOKEN=$INTEGRATOR_TOKEN "$CLINICCTL" integrator serve --payer "$DEMO_PAYER" \
  --rules crates/clinicctl/seed/miami/integrator-rules.toml --cursor-file "$RUN_DIR/integrator.cursor" \
  >"$RUN_DIR/integrator.log" 2>&1 &
PIDS+=($!)

echo
echo "== one patient's journey (the payer's integrator answers in the background: $RUN_DIR/integrator.log)"
journey_status=0
OTEL_EXPORTER_OTLP_ENDPOINT="http://$OTLP_ADDR" "$CLINICCTL" journey --mail-dir "$RUN_DIR/mail" |
  tee "$RUN_DIR/journey.txt" || journey_status=$?
trace_id=$(sed -n 's/^  trace  *\([0-9a-f]\{32\}\)$/\1/p' "$RUN_DIR/journey.txt" | head -n 1)
if [[ -n $trace_id ]]; then
  for _ in $(seq 1 20); do [[ -s "$RUN_DIR/traces/$trace_id.txt" ]] && break; sleep 0.5; done
  sleep 2 # late spans (consumers, deliveries) re-write the trace file
  if [[ -s "$RUN_DIR/traces/$trace_id.txt" ]]; then
    echo
    echo "== the journey's trace (first 60 lines; all of it: $RUN_DIR/traces/$trace_id.txt)"
    head -n 60 "$RUN_DIR/traces/$trace_id.txt"
  fi
fi
if [[ $journey_status -ne 0 ]]; then
  echo "note: some steps of the journey did not complete (see above); the network keeps running."
fi

cat <<MSG

clinicnet is running:
  directory      127.0.0.1:50051      appointments   127.0.0.1:50052
  insurance      127.0.0.1:50053      notifications  127.0.0.1:50054
  mail sink      $MAIL_ADDR (messages in $RUN_DIR/mail/)
  trace viewer   $OTLP_ADDR (OTLP/gRPC; every trace in $RUN_DIR/traces.log)
Every port serves gRPC health, reflection and clinicnet.ops.v1.EventOpsService.
Logs: $RUN_DIR/<service>.log

Use clinicctl from another terminal (the commands printed by the journey work as they are):
  cd $PWD
  export PATH=$PWD/target/debug:\$PATH JWT_HS256_SECRET=$JWT_HS256_SECRET
  export CLINICNET_TOKEN=\$(clinicctl token mint --role ops)
  clinicctl clinic list
  clinicctl events lag
  clinicctl --help
Press Ctrl-C to stop everything started here.
MSG
wait -n "${SVC_PIDS[@]}" || true
