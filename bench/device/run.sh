#!/bin/bash
# On the lent machine, from the repository root, with .devbench/ carried (bench/device/bundle.sh):
# start MariaDB, put wrk on PATH, install the wheels, run bench/device/ingest.py.
#   usage: bash bench/device/run.sh ROUNDS SECONDS SIZE:CONCURRENCY[,SIZE:CONCURRENCY...]
set -u
export PYTHONUNBUFFERED=1
D=$PWD/.devbench
nproc; uname -r; python3 --version; df -h /tmp | tail -1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $D/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /tmp/bin && gunzip -c $D/mdb/bin/mariadbd.gz > /tmp/bin/mariadbd && chmod +x /tmp/bin/mariadbd
printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$D/mdb/lib" "$D/mdb/bin/wrk" > /tmp/bin/wrk && chmod +x /tmp/bin/wrk $D/mdb/bin/wrk
export PATH=/tmp/bin:$PATH
tar -C /tmp -xzf $D/mdb/datadir.tgz
LD_LIBRARY_PATH=$D/mdb/lib setsid /tmp/bin/mariadbd --no-defaults --datadir=/tmp/devdd --user=root \
  --socket=/tmp/mysqld.sock --port=3306 --bind-address=127.0.0.1 --innodb-log-file-size=16M \
  --lc-messages-dir=$D/mdb/share --character-sets-dir=$D/mdb/share/charsets --max-connections=500 \
  > $OUT/mariadb.log 2>&1 &
for i in $(seq 100); do [ -S /tmp/mysqld.sock ] && break; sleep 0.2; done
[ -S /tmp/mysqld.sock ] || { echo "mariadb did not start"; tail -30 $OUT/mariadb.log; exit 1; }
wrk --version 2>&1 | head -1
python3 -c "import aiohttp, aiomysql, multipart, structlog, PIL, pillow_heif, orjson; print('imports ok', aiohttp.__version__)" || exit 1
python3 bench/device/ingest.py "$@" 2>&1 | grep -v '^ ' | tee $OUT/ingest.log
