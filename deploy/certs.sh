#!/bin/sh
# certs.sh [--ca-dir DIR] [--actor-dir DIR] OUT_DIR [HOST...]: makes what a dreamfleet cluster needs
# to talk over TLS with a bearer token per role:
#
#   OUT_DIR/ca.pem                the CA certificate every process trusts
#   OUT_DIR/cert.pem, key.pem     the servers' certificate (replay shards, learner), signed by the
#                                 CA, valid for each HOST (names and IP addresses) plus localhost
#                                 and 127.0.0.1; also the client certificate under mTLS
#   OUT_DIR/actor.token, learner.token, reader.token   a random bearer token per role
#   ca.key                        the CA's key, in OUT_DIR or --ca-dir DIR (keep it away from the
#                                 running processes: none of them needs it)
#   --actor-dir DIR               also copies what an actor needs there: ca.pem and actor.token
#                                 (no server key, no other role's token)
#
# and prints the config lines that use them. Files already there are kept, so it is safe to run at
# every start (the compose `certs` service does): the certificate is made again only when it
# expires within 30 days or does not name a HOST asked for; delete the files to renew everything.
# Keys and tokens are readable by their owner only. Needs the openssl command (package openssl).
#
#   deploy/certs.sh certs replay-0 replay-1 learner 10.0.0.5
set -eu

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

ca_dir=""
actor_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --ca-dir) [ $# -ge 2 ] || { echo "certs.sh: --ca-dir needs a directory" >&2; exit 2; }
      ca_dir="$2"; shift 2 ;;
    --actor-dir) [ $# -ge 2 ] || { echo "certs.sh: --actor-dir needs a directory" >&2; exit 2; }
      actor_dir="$2"; shift 2 ;;
    -*) echo "certs.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
out="$1"
shift
ca_dir="${ca_dir:-$out}"
command -v openssl >/dev/null 2>&1 || {
  echo "certs.sh: the openssl command is missing (apt-get install openssl)" >&2
  exit 1
}
umask 077
mkdir -p "$out" "$ca_dir"

# subjectAltName for the hosts: dotted quads and anything with ':' as IP:, the rest as DNS:.
san="DNS:localhost,IP:127.0.0.1"
for host in "$@"; do
  kind=DNS
  if printf '%s' "$host" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$|:'; then kind=IP; fi
  case ",$san," in
    *",$kind:$host,"*) ;;
    *) san="$san,$kind:$host" ;;
  esac
done

if [ ! -s "$out/ca.pem" ] || [ ! -s "$ca_dir/ca.key" ]; then
  [ ! -s "$out/ca.pem" ] || {
    echo "certs.sh: $out/ca.pem exists but its key $ca_dir/ca.key does not; delete ca.pem to make a new CA" >&2
    exit 1
  }
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=dreamfleet cluster CA" -keyout "$ca_dir/ca.key" -out "$out/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  rm -f "$out/cert.pem" "$out/key.pem"  # a new CA needs a new certificate
  echo "certs.sh: made the CA $out/ca.pem"
fi

# Whether cert.pem is missing, expires within 30 days or does not name a requested host (IPv6
# addresses, which openssl prints expanded, are not compared).
renew=""
if [ ! -s "$out/cert.pem" ] || [ ! -s "$out/key.pem" ]; then
  renew="missing"
elif ! openssl x509 -in "$out/cert.pem" -noout -checkend 2592000 >/dev/null 2>&1; then
  renew="expires within 30 days"
else
  names="$(openssl x509 -in "$out/cert.pem" -noout -ext subjectAltName 2>/dev/null | tr -d ' ' | tr ',' '\n' | sed 's/^IPAddress:/IP:/')"
  for entry in $(printf '%s' "$san" | tr ',' ' '); do
    case "$entry" in *:*:*) continue ;; esac
    printf '%s\n' "$names" | grep -qx "$entry" || renew="it does not name ${entry#*:}"
  done
fi
if [ -n "$renew" ]; then
  [ -s "$ca_dir/ca.key" ] || { echo "certs.sh: cannot sign: $ca_dir/ca.key is missing" >&2; exit 1; }
  ext="$(mktemp)"
  trap 'rm -f "$ext" "$out/cert.csr" "$out/ca.srl" "$ca_dir/ca.srl"' EXIT
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" >"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=dreamfleet" \
    -keyout "$out/key.pem" -out "$out/cert.csr" 2>/dev/null
  openssl x509 -req -in "$out/cert.csr" -CA "$out/ca.pem" -CAkey "$ca_dir/ca.key" \
    -CAcreateserial -CAserial "$ca_dir/ca.srl" -days 825 -extfile "$ext" -out "$out/cert.pem" \
    2>/dev/null
  echo "certs.sh: made $out/cert.pem ($renew) for $san"
else
  echo "certs.sh: kept $out/cert.pem"
fi

for role in actor learner reader; do
  if [ ! -s "$out/$role.token" ]; then
    openssl rand -hex 32 >"$out/$role.token"
  fi
done
chmod 0644 "$out/ca.pem" "$out/cert.pem"
if [ -n "$actor_dir" ]; then
  mkdir -p "$actor_dir"
  cp "$out/ca.pem" "$out/actor.token" "$actor_dir/"
  chmod 0644 "$actor_dir/ca.pem"
fi

cat <<CONFIG
certs.sh: config for every process of the cluster (or --set security.KEY=VALUE):
security:
  ca_file: $out/ca.pem
  cert_file: $out/cert.pem
  key_file: $out/key.pem
  actor_token_file: $out/actor.token
  learner_token_file: $out/learner.token
  reader_token_file: $out/reader.token
CONFIG
