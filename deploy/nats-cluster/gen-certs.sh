#!/bin/sh
# Makes a test CA, a certificate for the three NATS nodes (server and client
# auth, names nats-1..3 and localhost) and one for the workers, in ./certs.
# For trying the cluster example only: use your own PKI in production.
set -eu
cd "$(dirname "$0")"
mkdir -p certs
cd certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=triggerbus example CA" -keyout ca-key.pem -out ca.pem
leaf() { # name, extendedKeyUsage, subjectAltName
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$1-key.pem" -out "$1.csr"
  printf 'extendedKeyUsage=%s\nsubjectAltName=%s\n' "$2" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
    -extfile "$1.ext" -out "$1.pem"
  rm "$1.csr" "$1.ext"
}
leaf nats serverAuth,clientAuth DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost,IP:127.0.0.1
leaf trigger-worker clientAuth DNS:trigger-worker
# The containers run as other users than this one.
chmod 0644 ./*.pem
