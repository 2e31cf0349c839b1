#!/usr/bin/env bash
# Generates a throwaway PKI for the update tests, under DIR (a build directory, never the
# source tree: nothing here may be committed). Every run makes fresh keys.
#
#   ca.cert.pem / ca.key.pem            the test CA: the lab's RAUC keyring
#   signing.cert.pem / signing.key.pem  a valid signing certificate issued by the CA
#   other-ca.cert.pem, other-signing.*  an unrelated CA and its signing cert (unknown key)
#   expired.cert.pem / expired.key.pem  issued by the CA, validity ended yesterday
#   future.cert.pem / future.key.pem    issued by the CA, valid only from tomorrow
#
# Usage: images/test-pki.sh DIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
mkdir -p "$dir"
cd "$dir"
umask 077

# Extensions for a code-signing leaf (RAUC checks the chain, not the EKU, but a real
# signing cert should say what it is for).
cat > leaf.ext <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT

make_ca() { # NAME SUBJECT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "$2" -keyout "$1.key.pem" -out "$1.cert.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
}

# Issues NAME.cert.pem from CA with the given validity (openssl x509 -not_before/-not_after
# need OpenSSL 3.4; `openssl ca` takes explicit dates on every OpenSSL 3).
make_leaf() { # NAME CA SUBJECT STARTDATE ENDDATE  (dates as YYYYMMDDHHMMSSZ)
  local name=$1 ca=$2 subj=$3 start=$4 end=$5 cadir="ca-db.$2"
  mkdir -p "$cadir"
  : > "$cadir/index.txt"
  [ -f "$cadir/serial" ] || openssl rand -hex 16 > "$cadir/serial"
  cat > "$cadir/ca.cnf" <<CNF
[ca]
default_ca = test_ca
[test_ca]
database = $cadir/index.txt
serial = $cadir/serial
new_certs_dir = $cadir
certificate = $ca.cert.pem
private_key = $ca.key.pem
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
CNF
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$name.key.pem" -out "$name.csr.pem" 2>/dev/null
  openssl ca -batch -config "$cadir/ca.cnf" -in "$name.csr.pem" -out "$name.cert.pem" \
    -startdate "$start" -enddate "$end" -extfile leaf.ext -notext 2>/dev/null
  rm -f "$name.csr.pem"
}

utc() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

make_ca ca "/O=Cordon test/CN=Cordon test update CA"
make_ca other-ca "/O=Somebody else/CN=Unrelated CA"
make_leaf signing ca "/O=Cordon test/CN=Cordon test bundle signing" "$(utc '-1 hour')" "$(utc '+365 days')"
make_leaf other-signing other-ca "/O=Somebody else/CN=Unrelated signing" "$(utc '-1 hour')" "$(utc '+365 days')"
make_leaf expired ca "/O=Cordon test/CN=Cordon test expired signing" "$(utc '-10 days')" "$(utc '-1 day')"
make_leaf future ca "/O=Cordon test/CN=Cordon test future signing" "$(utc '+1 day')" "$(utc '+365 days')"

# Sanity: the good cert verifies against the CA, the others fail for the expected reason.
openssl verify -CAfile ca.cert.pem signing.cert.pem >/dev/null
echo "test PKI in $dir"
