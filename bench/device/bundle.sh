#!/bin/bash
# Build .devbench/: what bench/device/run.sh needs on a lent machine that has Python 3.12 but no
# MariaDB, no wrk and no package registry. Run here, in the repository root; .devbench/ must be
# ignored (.git/info/exclude) and named in the device call's `carry`.
#   - the wheels of the api's dependencies for CPython 3.12 (versions as in this .venv);
#   - this machine's mariadbd with the shared libraries it needs beyond glibc and libstdc++, its
#     message and charset files, and a data directory made by mariadb-install-db;
#   - wrk and libluajit.
set -euo pipefail
B=.devbench
rm -rf $B && mkdir -p $B/whl $B/mdb/bin $B/mdb/lib $B/mdb/share/english
pins=$(.venv/bin/pip list --format=freeze 2>/dev/null | grep -i -E '^(aiohttp|multidict|yarl|propcache|frozenlist|aiosignal|aiohappyeyeballs|aiomysql|pymysql|multipart|structlog|tenacity|orjson|pillow|pillow.heif|aiokafka|async-timeout|py.svg.hush)==')
plats=""
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 manylinux1_x86_64 manylinux_2_5_x86_64; do plats="$plats --platform $p"; done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plats -d $B/whl $pins
libs="libpcre2-8.so.0 libcrypt.so.1 liburing.so.2 libaio.so.1 libnuma.so.1 libsystemd.so.0 libz.so.1 libssl.so.3
      libcrypto.so.3 libcap.so.2 libgcrypt.so.20 liblzma.so.5 libzstd.so.1 liblz4.so.1 libgpg-error.so.0 libluajit-5.1.so.2"
for l in $libs; do cp -L /lib/x86_64-linux-gnu/$l $B/mdb/lib/; done
gzip -9 -c /usr/sbin/mariadbd > $B/mdb/bin/mariadbd.gz
cp /usr/bin/wrk $B/mdb/bin/
cp /usr/share/mysql/english/errmsg.sys $B/mdb/share/english/
cp -r /usr/share/mysql/charsets $B/mdb/share/
rm -rf /tmp/devdd
mariadb-install-db --no-defaults --datadir=/tmp/devdd --user=root --auth-root-authentication-method=normal \
  --skip-test-db --innodb-log-file-size=16M >/dev/null
tar -C /tmp -czf $B/mdb/datadir.tgz devdd
du -sh $B
