#!/bin/sh
# Makes every secret docker-compose.yml mounts, under secrets/ (or the directory given), once:
# a file that exists is kept, so running it again changes nothing (delete a file to rotate it).
#   ./make-secrets.sh            # then: docker compose up -d --build
# Needs openssl. Secrets are files mounted at /run/secrets/ (Kafka's at /etc/kafka/secrets/),
# never environment values. The directory is private (0700); its files are readable (0644)
# because compose bind-mounts them into containers whose users are not this one.
set -eu
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir/kafka"
chmod 700 "$dir"
umask 022

random() { openssl rand -hex 24; }
once() {  # once FILE COMMAND...: write COMMAND's output to FILE unless FILE exists
  file=$1; shift
  [ -s "$file" ] || { "$@" > "$file.tmp" && mv "$file.tmp" "$file"; }
}

# MariaDB, the tokens' secret (IMAGES_AUTH_HS256_SECRET_FILE), MinIO's administrator, Grafana's.
for name in jwt-secret db-password db-root-password minio-root-password grafana-admin-password \
            kafka-password kafka/admin-password kafka/keystore-password; do
  once "$dir/$name" random
done
once "$dir/minio-root-user" echo minio-admin
# The service's own S3 key (minio-init creates it with access to the bucket only), in the AWS
# shared-credentials format the service reads through AWS_SHARED_CREDENTIALS_FILE. On AWS S3,
# replace this file with your IAM key's.
s3_credentials() { printf '[default]\naws_access_key_id=images-app\naws_secret_access_key=%s\n' "$(random)"; }
once "$dir/s3-credentials" s3_credentials

# Kafka over SASL_SSL, as a managed cluster: a CA of this deployment, the brokers' certificate
# (names kafka, kafka-2, kafka-3, localhost), PLAIN users `admin` (brokers, topic set-up) and
# `images` (the service, password in kafka-password).
ca_key="$dir/kafka-ca.key"  # stays here: no container mounts it
if [ ! -s "$dir/kafka-ca.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=image-server compose CA" \
    -keyout "$ca_key" -out "$dir/kafka-ca.pem" 2>/dev/null
  rm -f "$dir/kafka/kafka.keystore.p12"
fi
cp "$dir/kafka-ca.pem" "$dir/kafka/ca.pem"
if [ ! -s "$dir/kafka/kafka.keystore.p12" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  printf '%s\n' "subjectAltName=DNS:kafka,DNS:kafka-2,DNS:kafka-3,DNS:localhost" \
    "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid,issuer" > "$work/ext"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka" -keyout "$work/key" -out "$work/csr" 2>/dev/null
  openssl x509 -req -sha256 -days 825 -in "$work/csr" -CA "$dir/kafka-ca.pem" -CAkey "$ca_key" \
    -CAcreateserial -CAserial "$work/serial" -extfile "$work/ext" -out "$work/crt" 2>/dev/null
  openssl pkcs12 -export -name kafka -inkey "$work/key" -in "$work/crt" -certfile "$dir/kafka-ca.pem" \
    -passout "file:$dir/kafka/keystore-password" -out "$dir/kafka/kafka.keystore.p12"
  chmod 644 "$dir/kafka/kafka.keystore.p12"  # the broker's user reads it through the bind mount
fi
admin=$(cat "$dir/kafka/admin-password")
images=$(cat "$dir/kafka-password")
broker_jaas() {
  printf 'KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n'
  printf '  username="admin" password="%s"\n  user_admin="%s"\n  user_images="%s";\n};\n' "$admin" "$admin" "$images"
}
broker_jaas > "$dir/kafka/broker_jaas.conf"
# The brokers' health check and kafka-init log in as admin with this client configuration.
cat > "$dir/kafka/admin.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.pem
PROPERTIES
echo "secrets in $dir"
