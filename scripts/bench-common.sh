# Shared by scripts/bench-copy.sh and scripts/bench-sync.sh (sourced, not
# run): $BERTH, $WORK and $PIDS come from the script that sources it.

start() { # NAME PORT: a Berth on 127.0.0.1:PORT, data under $WORK/NAME
  printf '{"storage":{"rootDirectory":"%s"},"http":{"address":"127.0.0.1","port":"%s"},"log":{"level":"warn"}}' \
    "$WORK/$1" "$2" > "$WORK/$1.json"
  "$BERTH" serve "$WORK/$1.json" 2>"$WORK/$1.log" &
  PIDS="$PIDS $!"
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$2/v2/" >/dev/null && return; sleep 0.1; done
  echo "berth on $2 did not start" >&2; exit 1
}

measure() { # LABEL COMMAND...: prints "LABEL wall=… peak_rss_mib=…"
  label=$1; shift
  /usr/bin/time -v "$@" >/dev/null 2>"$WORK/time.txt" || { cat "$WORK/time.txt" >&2; exit 1; }
  wall=$(grep 'Elapsed (wall clock)' "$WORK/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$WORK/time.txt" | awk '{printf "%.1f", $NF/1024}')
  echo "$label wall=$wall peak_rss_mib=$rss"
}
