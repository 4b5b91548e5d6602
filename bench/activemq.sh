#!/usr/bin/env bash
# Run a private ActiveMQ 5.17 (Debian package "activemq") as the current user, for benchmarks and
# comparisons: its own config, data directory and ports, never the system instance.
#
#   bench/activemq.sh start BASE_DIR STOMP_PORT [STORE_DIR]   start in the background, wait for STOMP
#   bench/activemq.sh stop  BASE_DIR [--kill]                  stop the instance started in BASE_DIR
#                                                              (--kill: SIGKILL at once, for throw-away stores)
#
# BASE_DIR receives conf/activemq.xml, the pid file and the log (console.log). STORE_DIR (default BASE_DIR/data)
# holds KahaDB; two instances given the same STORE_DIR form a shared-file-system master/slave
# pair (KahaDB's lock file decides the master), which is what the failover comparison uses.
# The Debian configuration enables no authentication, so any login/passcode is accepted.
#
# AMQ_JDBC_URL=jdbc:postgresql://HOST:PORT/DB (with AMQ_JDBC_USER, AMQ_JDBC_PASSWORD) replaces
# KahaDB by ActiveMQ's JDBC store (activemq-jdbc-store.jar, shipped by Debian) on that
# PostgreSQL, through org.postgresql.ds.PGSimpleDataSource (Debian libpostgresql-jdbc-java):
# the "Replicated Message Store" alternative issue 14 compares with. The journal is disabled,
# as on ActiveMQ's page: every persistent send is a database transaction.
#
# AMQ_BROKER_XML: extra elements inside <broker> (e.g. <plugins>...</plugins>), and
# AMQ_SCHEDULER=1: schedulerSupport="true" (the redeliveryPlugin needs it). The differential
# test (tests/integration/16_activemq_diff.py) configures ActiveMQ's redelivery policy so.
set -euo pipefail

ACTIVEMQ_HOME=/usr/share/activemq
: "${ACTIVEMQ_HEAP:=1024M}"

die() { echo "activemq.sh: $*" >&2; exit 1; }

wait_port() {  # wait_port PORT PID SECONDS: until the port accepts connections or the JVM dies
  local port=$1 pid=$2 deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$pid" 2>/dev/null; then return 2; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

start() {
  local base=$1 port=$2 store=${3:-$1/data}
  [ -f "$ACTIVEMQ_HOME/bin/activemq.jar" ] || die "ActiveMQ is not installed: apt-get install -y activemq"
  mkdir -p "$base/conf" "$base/tmp" "$store"
  # AMQ_LOCK_SLEEP_MS: how often a slave retries the shared store's lock (KahaDB's
  # shared-file-locker lockAcquireSleepInterval); unset keeps ActiveMQ's default (10 s).
  local locker=""
  if [ -n "${AMQ_LOCK_SLEEP_MS:-}" ]; then
    locker="
        <locker><shared-file-locker lockAcquireSleepInterval=\"$AMQ_LOCK_SLEEP_MS\"/></locker>"
  fi
  base=$(cd "$base" && pwd); store=$(cd "$store" && pwd)
  local adapter="
      <kahaDB directory=\"$store/kahadb\">$locker
      </kahaDB>" datasource="" classpath="$base/conf"
  if [ -n "${AMQ_JDBC_URL:-}" ]; then
    [ -f /usr/share/java/postgresql.jar ] || die "no PostgreSQL JDBC driver: apt-get install -y libpostgresql-jdbc-java"
    local hostport=${AMQ_JDBC_URL#jdbc:postgresql://}; hostport=${hostport%%/*}
    adapter="
      <jdbcPersistenceAdapter dataSource=\"#pg\" createTablesOnStartup=\"true\" lockKeepAlivePeriod=\"5000\"/>"
    datasource="
  <bean id=\"pg\" class=\"org.postgresql.ds.PGSimpleDataSource\">
    <property name=\"serverNames\" value=\"${hostport%%:*}\"/>
    <property name=\"portNumbers\" value=\"${hostport##*:}\"/>
    <property name=\"databaseName\" value=\"${AMQ_JDBC_URL##*/}\"/>
    <property name=\"user\" value=\"${AMQ_JDBC_USER:-}\"/>
    <property name=\"password\" value=\"${AMQ_JDBC_PASSWORD:-}\"/>
  </bean>"
    classpath="$base/conf:/usr/share/java/postgresql.jar"
  fi
  # ActiveMQ's STOMP transport converts a message whose type is "Advisory" (advisories,
  # and the copies a BROWSE of ActiveMQ.Scheduler.Management sends) with XStream, which
  # Debian's package does not put on its class path: without it the connection's
  # dispatcher dies with NoClassDefFoundError and the client gets nothing more.
  local jar
  for jar in xstream xpp3 jettison; do
    [ -f "/usr/share/java/$jar.jar" ] && classpath="$classpath:/usr/share/java/$jar.jar"
  done
  local scheduler=false
  [ "${AMQ_SCHEDULER:-0}" = 1 ] && scheduler=true
  # Persistence as shipped (KahaDB, fsync per write). Limits are raised above the defaults so a
  # 1M-message backlog is kept on disk instead of blocking the producers (flow control is a
  # separate comparison). The OpenWire port is the STOMP port + 1 so instances do not collide.
  cat > "$base/conf/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="bench"
          dataDirectory="$store" schedulePeriodForDestinationPurge="0" schedulerSupport="$scheduler">
    ${AMQ_BROKER_XML:-}
    <persistenceAdapter>$adapter
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
        <storeUsage><storeUsage limit="20 gb"/></storeUsage>
        <tempUsage><tempUsage limit="10 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$port?wireFormat.maxFrameSize=104857600"/>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:$((port + 1))"/>
    </transportConnectors>
  </broker>$datasource
</beans>
XML
  # Debian's ActiveMQ logs through slf4j-log4j12 (log4j 1.2), which reads log4j.properties from
  # the class path (conf/ is on it); the packaged log4j2.properties is never read.
  cat > "$base/conf/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %-5p %m%n
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
PROPS
  # The flags below are what /usr/bin/activemq passes to Java 9+ (module opens for Spring/XBean).
  # shellcheck disable=SC2086
  java -Xms${ACTIVEMQ_HEAP} -Xmx${ACTIVEMQ_HEAP} -Dorg.apache.activemq.UseDedicatedTaskRunner=true \
    --add-reads=java.xml=java.logging \
    --add-opens java.base/java.security=ALL-UNNAMED --add-opens java.base/java.net=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
    --add-opens java.naming/javax.naming.spi=ALL-UNNAMED \
    --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
    -Dactivemq.classpath="$classpath" -Dactivemq.home="$ACTIVEMQ_HOME" -Dactivemq.base="$base" \
    -Dactivemq.conf="$base/conf" -Dactivemq.data="$base" -Djava.io.tmpdir="$base/tmp" \
    -jar "$ACTIVEMQ_HOME/bin/activemq.jar" start "xbean:file:$base/conf/activemq.xml" \
    >"$base/console.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$base/activemq.pid"
  # A slave of a shared store never opens its port: the caller passes WAIT=0 for those.
  if [ "${WAIT:-1}" = 1 ]; then
    local rc=0; wait_port "$port" "$pid" 120 || rc=$?
    [ $rc = 0 ] || { tail -20 "$base/console.log" >&2; die "ActiveMQ in $base did not open port $port (rc=$rc)"; }
  fi
  echo "$pid"
}

stop() {
  local base=$1 how=${2:-} pid
  [ -f "$base/activemq.pid" ] || return 0
  pid=$(cat "$base/activemq.pid")
  if [ "$how" = --kill ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  elif kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$base/activemq.pid"
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) [ $# -ge 2 ] || die "usage: start BASE_DIR STOMP_PORT [STORE_DIR]"; start "$@" ;;
  stop)  [ $# -ge 1 ] || die "usage: stop BASE_DIR [--kill]"; stop "$@" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
