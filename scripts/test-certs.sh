#!/usr/bin/env bash
# Writes the certificates and stores the TLS tests use into DIR (created), with openssl and,
# when present, Java's keytool:
#   ca.pem, ca.key                 the test CA
#   server.pem, server.key         broker certificate (localhost, 127.0.0.1) and PKCS#8 key
#   server-bundle.pem              key and chain in one file (ssl.keystore.type=PEM)
#   server2-bundle.pem             another broker certificate (CN=localhost-rotated), for rotation
#   server-enc.key                 the key encrypted under "keypass" (ssl.key.password)
#   server.p12                     key and chain, PKCS12, password "storepass"
#   truststore.pem                 the CA (ssl.truststore.type=PEM)
#   truststore.p12                 the CA as a trusted entry, PKCS12 "storepass" (keytool)
#   server.jks                     a JKS store (keytool), which ferrolog refuses
#   client.pem, client.key, client.p12   a client signed by the CA:
#                                  CN=client,OU=eng,O=ferrolog,C=US
#   expired.pem, expired.key       a client certificate that expired in 2020
#   rogue-ca.pem, rogue.pem, rogue.key   a client signed by a CA nobody trusts
set -euo pipefail
dir=${1:?usage: test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=3650
q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@"; exit 1; }; }

q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
    -subj "/CN=ferrolog test CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
cp ca.pem truststore.pem

# leaf NAME SUBJECT EXT: key NAME.key (PKCS#8), certificate NAME.pem signed by the CA
leaf() {
    q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
    printf '%s\n' "$3" >"$1.ext"
    q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out "$1.pem" -days $days -extfile "$1.ext"
    rm -f "$1.csr" "$1.ext"
}
leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
leaf client "/C=US/O=ferrolog/OU=eng/CN=client" "extendedKeyUsage=clientAuth"
leaf server2 "/CN=localhost-rotated" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
cat server.key server.pem ca.pem >server-bundle.pem
cat server2.key server2.pem ca.pem >server2-bundle.pem
q openssl pkcs8 -topk8 -in server.key -out server-enc.key -v2 aes-256-cbc -passout pass:keypass
q openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name server \
    -out server.p12 -passout pass:storepass
q openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem -name client \
    -out client.p12 -passout pass:storepass

# an expired client certificate, through `openssl ca` (the only way to set past dates)
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<EOF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
x509_extensions = client
[any]
commonName = supplied
[client]
extendedKeyUsage = clientAuth
EOF
q openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=expired"
q openssl ca -batch -config ca-db/ca.cnf -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20200102000000Z -notext
rm -rf ca-db expired.csr

# a client whose CA is not trusted
q openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.pem -days $days \
    -subj "/CN=rogue CA" -addext basicConstraints=critical,CA:TRUE
q openssl req -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.csr -subj "/CN=rogue"
echo "extendedKeyUsage=clientAuth" >rogue.ext
q openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial \
    -out rogue.pem -days $days -extfile rogue.ext
rm -f rogue.csr rogue.ext rogue-ca.key ./*.srl

if command -v keytool >/dev/null; then
    rm -f truststore.p12 server.jks
    q keytool -importcert -noprompt -alias ca -file ca.pem -keystore truststore.p12 \
        -storetype PKCS12 -storepass storepass
    q keytool -importkeystore -srckeystore server.p12 -srcstoretype PKCS12 \
        -srcstorepass storepass -destkeystore server.jks -deststoretype JKS \
        -deststorepass storepass
else
    q openssl pkcs12 -export -nokeys -in ca.pem -out truststore.p12 -passout pass:storepass
fi
