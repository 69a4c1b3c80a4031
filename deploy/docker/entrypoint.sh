#!/bin/sh
# dreamfleet-entrypoint: the container entrypoint of the one dreamfleet image. Its first argument
# names the role; it turns the container's environment (compose service, Kubernetes pod) into the
# binary's flags and execs the binary, so the process gets the signals and its exit status is the
# container's:
#
#   dreamfleet-entrypoint replay|learner|actor [flags...]  -> dreamfleet-<role> [env flags] [flags...]
#   dreamfleet-entrypoint status [flags...]                 -> dreamfleet status [env flags] [flags...]
#                           (inside the cluster's network, with the cluster's addresses:
#                           `docker-compose exec learner dreamfleet-entrypoint status`)
#   dreamfleet-entrypoint certs OUT_DIR [HOST...]           -> dreamfleet-certs (deploy/certs.sh):
#                           the cluster's CA, certificate and role tokens, made once
#   dreamfleet-entrypoint <any other command> [args...]    -> runs it (sh, ...)
#
# Environment:
#   DREAMFLEET_CONFIG       config file, passed as --config (empty or unset: the embedded default)
#   DREAMFLEET_SET          whitespace-separated key=value overrides shared by every role, passed as
#                           --set before the role's own flags (so a service's flags win)
#   DREAMFLEET_LEARNER_DEVICE  learner only: passed last as --set learner.device=VALUE (cpu|cuda|auto)
#   DREAMFLEET_ACTOR_ID     actor only, when the flags hold no --actor-id: the actor id; default the
#                           hostname (compose container id, Kubernetes pod name), so the replay
#                           client's stable hash spreads actors over the shards
#   DREAMFLEET_ACTOR_SEED   actor only, when the flags hold no --actor-index: the actor's seed, set
#                           as run.seed and env.base_seed; default the CRC32 (cksum) of the actor
#                           id. Containers all run with actor index 0 (so /metrics stays on
#                           actor.metrics_port), and the binary seeds its envs and policy from
#                           run.seed, env.base_seed and the index: without this every replica
#                           would step the same episodes with the same random actions.
#   DREAMFLEET_SHARD_INDEX  replay only, when the flags hold no --shard-index: the shard index;
#                           default the number after the hostname's last '-' (StatefulSet pod
#                           replay-3 is shard 3)
#   DREAMFLEET_REPLAY_PORT, DREAMFLEET_REPLAY_METRICS_PORT  replay only: serve this shard's gRPC,
#                           resp. /metrics and /healthz, on exactly this port. The binary listens
#                           for shard i on replay.port + i (metrics_port + i), so the base is set to
#                           PORT - i: every pod of a StatefulSet then has the same ports, probes and
#                           scrape annotations, and clients dial replay.addresses.
#   DREAMFLEET_BIN_DIR      where the binaries are (default /opt/dreamfleet/bin)
set -eu

bin_dir="${DREAMFLEET_BIN_DIR:-/opt/dreamfleet/bin}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

die() {
  echo "dreamfleet-entrypoint: $*" >&2
  exit 2
}

# has_flag FLAG ARGS...: whether ARGS hold FLAG as "FLAG VALUE" or "FLAG=VALUE".
has_flag() {
  flag="$1"
  shift
  for arg in "$@"; do
    case "$arg" in
      "$flag" | "$flag"=*) return 0 ;;
    esac
  done
  return 1
}

role="${1:-}"
case "$role" in
  replay | learner | actor | status) shift ;;
  certs)
    shift
    exec "$bin_dir/dreamfleet-certs" "$@"
    ;;
  "" | -h | --help | help)
    usage
    exit 0
    ;;
  *) exec "$@" ;;
esac

# Overrides the role adds before (head) and after (tail) the service's own flags.
head_flags=""
tail_flags=""
case "$role" in
  actor)
    if ! has_flag --actor-id "$@"; then
      actor_id="${DREAMFLEET_ACTOR_ID:-$(hostname)}"
      [ -n "$actor_id" ] || die "actor: no --actor-id, DREAMFLEET_ACTOR_ID or hostname"
      set -- "$@" --actor-id "$actor_id"
    else
      actor_id=""
      prev=""
      for arg in "$@"; do
        case "$prev" in --actor-id) actor_id="$arg" ;; esac
        case "$arg" in --actor-id=*) actor_id="${arg#--actor-id=}" ;; esac
        prev="$arg"
      done
    fi
    if ! has_flag --actor-index "$@"; then
      seed="${DREAMFLEET_ACTOR_SEED:-$(printf '%s' "$actor_id" | cksum | cut -d ' ' -f 1)}"
      case "$seed" in
        '' | *[!0-9]*) die "actor: seed '$seed' is not a non-negative integer" ;;
      esac
      head_flags="run.seed=$seed env.base_seed=$seed"
    fi
    ;;
  replay)
    if has_flag --shard-index "$@"; then
      [ -z "${DREAMFLEET_REPLAY_PORT:-}${DREAMFLEET_REPLAY_METRICS_PORT:-}" ] ||
        die "replay: DREAMFLEET_REPLAY_PORT and DREAMFLEET_REPLAY_METRICS_PORT need the shard index from the environment, not --shard-index"
    else
      shard_index="${DREAMFLEET_SHARD_INDEX:-}"
      if [ -z "$shard_index" ]; then
        host="$(hostname)"
        shard_index="${host##*-}"
        [ "$shard_index" != "$host" ] ||
          die "replay: no --shard-index, DREAMFLEET_SHARD_INDEX, or '-N' suffix in hostname '$host'"
      fi
      case "$shard_index" in
        '' | *[!0-9]*) die "replay: shard index '$shard_index' is not a non-negative integer" ;;
      esac
      set -- "$@" --shard-index "$shard_index"
      # fixed_port KEY PORT: the base KEY that puts this shard on exactly PORT.
      fixed_port() {
        case "$2" in
          '' | *[!0-9]*) die "replay: $1 port '$2' is not a port" ;;
        esac
        [ "$2" -gt "$shard_index" ] || die "replay: $1 port $2 is not above shard index $shard_index"
        tail_flags="$tail_flags $1=$(($2 - shard_index))"
      }
      [ -z "${DREAMFLEET_REPLAY_PORT:-}" ] || fixed_port replay.port "$DREAMFLEET_REPLAY_PORT"
      [ -z "${DREAMFLEET_REPLAY_METRICS_PORT:-}" ] ||
        fixed_port replay.metrics_port "$DREAMFLEET_REPLAY_METRICS_PORT"
    fi
    ;;
  learner)
    if [ -n "${DREAMFLEET_LEARNER_DEVICE:-}" ]; then
      tail_flags="learner.device=$DREAMFLEET_LEARNER_DEVICE"
    fi
    ;;
esac
for kv in $tail_flags; do
  set -- "$@" --set "$kv"
done
reversed=""
for kv in $head_flags; do
  reversed="$kv $reversed"
done
for kv in $reversed; do
  set -- --set "$kv" "$@"
done

# Prepend the shared overrides, then the config file (reversed, since each goes to the front).
# DREAMFLEET_SET is split on whitespace on purpose; globbing is off so '*' stays literal.
set -f
shared_set="${DREAMFLEET_SET:-}"
reversed=""
for kv in $shared_set; do
  case "$kv" in
    *=*) ;;
    *) die "DREAMFLEET_SET entry '$kv' is not key=value" ;;
  esac
  reversed="$kv $reversed"
done
for kv in $reversed; do
  set -- --set "$kv" "$@"
done
set +f
if [ -n "${DREAMFLEET_CONFIG:-}" ]; then
  set -- --config "$DREAMFLEET_CONFIG" "$@"
fi

if [ "$role" = status ]; then
  exec "$bin_dir/dreamfleet" status "$@"
fi
exec "$bin_dir/dreamfleet-$role" "$@"
