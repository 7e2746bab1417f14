#!/usr/bin/env bash
# stack.sh runs the whole wikiflow pipeline on this machine: natively by default (no
# containers: a Kafka JVM, nats-server and redis-server as plain processes), or with
# docker compose when STACK=docker.
#
#   scripts/stack.sh infra          start the brokers only: Kafka, NATS JetStream, Redis
#   scripts/stack.sh up             brokers + pipeline services (emulator, ingest, bridge,
#                                   aggregate, api); SOURCE=live|sample|<url> picks the feed
#   scripts/stack.sh down           stop services, then brokers; verify nothing is left
#   scripts/stack.sh status         a table of every component: pid, state, ports, health
#   scripts/stack.sh logs [-f] [c]  the last lines of every log, or of one component
#   scripts/stack.sh clean          down, then remove the data and run folders
#
# Everything lives in one folder, .wikiflow/ at the repository root (STACK_HOME):
#   run/   pid files and logs          data/  Kafka, NATS and Redis data (kept by down)
#   bin/   nats-server and wikiflow     The Kafka jars are cached once per user in
#          ${XDG_CACHE_HOME:-$HOME/.cache}/wikiflow/kafka-<version>/libs.
#
# Every start is idempotent: a component whose pid file names a live process with the
# expected command line is left alone, a stale pid file is removed, and a port held by
# some other process is an error that names the port.
#
# Environment:
#   STACK               native (default) or docker: the same commands then drive
#                       compose/docker-compose.yml with docker compose
#   SOURCE              live (default: the real Wikimedia EventStreams feed), sample
#                       (the bundled recording served by `wikiflow emulator`) or a URL
#   STACK_TIMEOUT       seconds to wait for a component to become healthy (default 120)
#   STACK_NATS_SYNC_INTERVAL  how often nats-server fsyncs JetStream's files: always
#                       (default: a write is on disk before it is acknowledged, about
#                       3,000 publishes/s here) or a duration such as 1s (an OS crash
#                       loses up to that much acknowledged data; nats-server's own
#                       default is 2m)
#   STACK_FEED_WAIT     seconds `up` waits for ingest's first event before it says the
#                       feed is silent, unreachable or stuck (default 15)
#   STACK_HOME          the run folder (default <repo>/.wikiflow)
#   WIKIFLOW_BIN        use this wikiflow binary instead of building ./cmd/wikiflow
#   STACK_KAFKA_JVM_OPTS  JVM options of Kafka (default: a 128-384 MB heap, the serial
#                       collector and the C1 compiler only, which halves the start time)
#   STACK_*_PORT        other ports, for development only: the defaults (Kafka 9092 and
#                       9093, NATS 4222 and 8222, Redis 6379, api 8080, health of ingest
#                       8081, bridge 8082, aggregate 8083, emulator 8090) are the ones
#                       every wikiflow command and compose/ assume
#   LOGS_FOLLOW=1       make `logs` follow (like `logs -f`); LOGS_LINES (default 50)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_HOME=${STACK_HOME:-$ROOT/.wikiflow}
RUN_DIR=$STACK_HOME/run
DATA_DIR=$STACK_HOME/data
BIN_DIR=$STACK_HOME/bin
CACHE_DIR=${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/wikiflow

KAFKA_VERSION=4.4.0
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_JVM_OPTS=${STACK_KAFKA_JVM_OPTS:--Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

# Native ports. compose/compose_test.go checks compose/docker-compose.yml against them.
KAFKA_PORT=${STACK_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${STACK_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_SASL_PORT=${STACK_KAFKA_SASL_PORT:-9094}
NATS_PORT=${STACK_NATS_PORT:-4222}
NATS_MONITOR_PORT=${STACK_NATS_MONITOR_PORT:-8222}
REDIS_PORT=${STACK_REDIS_PORT:-6379}
API_PORT=${STACK_API_PORT:-8080}
INGEST_HEALTH_PORT=${STACK_INGEST_HEALTH_PORT:-8081}
BRIDGE_HEALTH_PORT=${STACK_BRIDGE_HEALTH_PORT:-8082}
AGGREGATE_HEALTH_PORT=${STACK_AGGREGATE_HEALTH_PORT:-8083}
EMULATOR_PORT=${STACK_EMULATOR_PORT:-8090}

LIVE_URL=https://stream.wikimedia.org/v2/stream/recentchange
STOP_GRACE=15
TIMEOUT=${STACK_TIMEOUT:-120}
NATS_SYNC_INTERVAL=${STACK_NATS_SYNC_INTERVAL:-always}
WIKIFLOW=${WIKIFLOW_BIN:-$BIN_DIR/wikiflow}

BROKERS=(kafka nats redis)
SERVICES=(emulator ingest bridge aggregate api)

# ---------------------------------------------------------------- small helpers

say() { printf '%s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() {
	printf 'stack: error: %s\n' "$*" >&2
	exit 1
}

now_ms() {
	local t=${EPOCHREALTIME:-}
	if [[ -n $t ]]; then
		t=${t//[.,]/}
		printf '%s\n' $((10#$t / 1000))
	else
		printf '%s\n' $(($(date +%s) * 1000))
	fi
}

# elapsed START_MS prints the seconds since START_MS with one decimal.
elapsed() {
	local ms=$(($(now_ms) - $1))
	printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

pid_file() { printf '%s\n' "$RUN_DIR/$1.pid"; }
log_file() { printf '%s\n' "$RUN_DIR/$1.log"; }

# ports NAME prints the TCP ports a component listens on.
ports() {
	case $1 in
	kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT $KAFKA_SASL_PORT" ;;
	nats) echo "$NATS_PORT $NATS_MONITOR_PORT" ;;
	redis) echo "$REDIS_PORT" ;;
	emulator) echo "$EMULATOR_PORT" ;;
	ingest) echo "$INGEST_HEALTH_PORT" ;;
	bridge) echo "$BRIDGE_HEALTH_PORT" ;;
	aggregate) echo "$AGGREGATE_HEALTH_PORT" ;;
	api) echo "$API_PORT" ;;
	*) die "unknown component '$1' (known: ${BROKERS[*]} ${SERVICES[*]})" ;;
	esac
}

# signature NAME prints a string that the command line of the component contains.
signature() {
	case $1 in
	kafka) echo "kafka.Kafka $RUN_DIR/kafka.properties" ;;
	nats) echo "$BIN_DIR/nats-server" ;;
	redis) echo "redis-server" ;;
	*) echo "$WIKIFLOW $1" ;;
	esac
}

# matches NAME ARGS succeeds when the command line ARGS is that of component NAME.
# Redis rewrites its process title to "redis-server 127.0.0.1:<port>", so for it the
# port must appear, in the title or in the original --port argument.
matches() {
	case $1 in
	redis) [[ $2 == *redis-server* && $2 == *"$REDIS_PORT"* ]] ;;
	*) [[ $2 == *"$(signature "$1")"* ]] ;;
	esac
}

# alive PID succeeds when the process exists and is not a zombie (an exited child
# that its parent, here init, has not reaped yet).
alive() {
	local st
	kill -0 "$1" 2>/dev/null || return 1
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $st && $st != Z* ]]
}

# running_pid NAME prints the pid of the component and succeeds when its pid file
# names a live process whose command line matches; a stale pid file is removed.
running_pid() {
	local f pid args
	f=$(pid_file "$1")
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
		args=$(ps -o args= -p "$pid" 2>/dev/null || true)
		if matches "$1" "$args"; then
			printf '%s\n' "$pid"
			return 0
		fi
	fi
	rm -f "$f"
	return 1
}

# port_open PORT succeeds when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_owner PORT prints " (pid N: command)" for the listener on PORT when it can tell.
port_owner() {
	local pid=""
	if command -v ss >/dev/null 2>&1; then
		pid=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
	elif command -v lsof >/dev/null 2>&1; then
		pid=$(lsof -nP -iTCP:"$1" -sTCP:LISTEN -t 2>/dev/null | head -n1 || true)
	fi
	[[ -n $pid ]] || return 0
	printf ' (pid %s: %s)' "$pid" "$(ps -o args= -p "$pid" 2>/dev/null | cut -c1-100)"
}

# http_status PORT PATH prints the HTTP status code of GET PATH on 127.0.0.1:PORT.
http_status() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
		IFS=' ' read -r -t 3 _ code _ <&3 || exit 1
		printf '%s\n' "$code"
	) 2>/dev/null
}

# http_get PORT PATH prints the body of GET PATH on 127.0.0.1:PORT.
http_get() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
		local line
		while IFS= read -r -t 3 line; do
			[[ -z ${line%$'\r'} ]] && break
		done <&3
		while IFS= read -r -t 3 line || [[ -n $line ]]; do
			printf '%s\n' "$line"
		done <&3
	) 2>/dev/null
}

# degraded_reason PORT prints the reason a stage's /healthz gives with status
# "degraded" (ingest: "feed unreachable: …", "no progress at position …"), and
# nothing while it answers "ok".
degraded_reason() {
	local body
	body=$(http_get "$1" /healthz) || return 0
	[[ $body == *'"status":"degraded"'* && $body == *'"reason":"'* ]] || return 0
	body=${body#*\"reason\":\"}
	printf '%s\n' "$body" | sed -E 's/^((\\.|[^"\\])*)".*/\1/; s/\\u003c/</g; s/\\u003e/>/g; s/\\u0026/\&/g; s/\\"/"/g; s/\\\\/\\/g'
}

# feed_state waits up to STACK_FEED_WAIT seconds (default 15) for ingest's first
# published event; it prints ingest's degraded reason if it reports one first,
# "silent" if neither came, and nothing once events flow.
feed_state() {
	local deadline reason
	deadline=$(($(now_ms) + ${STACK_FEED_WAIT:-15} * 1000))
	while (($(now_ms) < deadline)); do
		reason=$(degraded_reason "$INGEST_HEALTH_PORT")
		if [[ -n $reason ]]; then
			printf '%s\n' "$reason"
			return 0
		fi
		grep -Eq '^wikiflow_ingest_(events_)?published(_total)? [1-9]' <<<"$(http_get "$INGEST_HEALTH_PORT" /metrics)" && return 0
		sleep 0.5
	done
	echo silent
}

# kafka_api_versions succeeds when the broker answers an ApiVersions request (v0,
# correlation id 7) without error: a check that speaks Kafka's own protocol.
kafka_api_versions() {
	local reply limit
	reply=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT" || exit 1
		printf '\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02wf' >&3
		limit=()
		command -v timeout >/dev/null && limit=(timeout 3)
		"${limit[@]+"${limit[@]}"}" head -c 10 <&3 | od -An -tx1 | tr -d ' \n'
	) || return 1
	# length (4 bytes), correlation id 7, error code 0
	[[ ${reply:8:12} == 000000070000 ]]
}

redis_ping() {
	if command -v redis-cli >/dev/null 2>&1; then
		[[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
	else
		local line
		line=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || exit 1
			printf 'PING\r\n' >&3
			IFS= read -r -t 3 line <&3 || exit 1
			printf '%s\n' "${line%$'\r'}"
		) || return 1
		[[ $line == +PONG ]]
	fi
}

# healthy NAME succeeds when the component answers its health check.
healthy() {
	case $1 in
	kafka)
		kafka_api_versions && grep -q 'Kafka Server started' "$(log_file kafka)" 2>/dev/null
		;;
	nats) [[ $(http_status "$NATS_MONITOR_PORT" /healthz) == 200 ]] ;;
	redis) redis_ping ;;
	emulator)
		# The emulator is an HTTP server of its own: any answer below 500 means it serves.
		local code
		code=$(http_status "$EMULATOR_PORT" /healthz) || return 1
		[[ $code =~ ^[1-4][0-9][0-9]$ ]]
		;;
	*) [[ $(http_status "$(ports "$1")" /healthz) == 200 ]] ;;
	esac
}

# lock serialises commands that start or stop processes (when flock exists).
lock() {
	mkdir -p "$RUN_DIR"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$RUN_DIR/.lock"
		flock -w 300 9 || die "another stack.sh holds $RUN_DIR/.lock"
	fi
}

# ---------------------------------------------------------------- starting

# already_running NAME reports and succeeds when NAME runs already.
already_running() {
	local pid
	if pid=$(running_pid "$1"); then
		say "$1: already running (pid $pid)"
		return 0
	fi
	return 1
}

# launch NAME CMD... starts CMD in its own session in the background, stdout and
# stderr appended to the component's log (the previous run's log is kept as .log.1).
launch() {
	local name=$1 log pidf p i
	shift
	for p in $(ports "$name"); do
		if port_open "$p"; then
			die "$name: port $p is already in use by another process$(port_owner "$p"); stop it or free the port"
		fi
	done
	log=$(log_file "$name")
	pidf=$(pid_file "$name")
	[[ -f $log ]] && mv -f "$log" "$log.1"
	rm -f "$pidf"
	local starter=(nohup)
	command -v setsid >/dev/null 2>&1 && starter=(setsid)
	# The inner shell writes its own pid (the one exec keeps) whether or not setsid forks.
	# shellcheck disable=SC2016 # expanded by the inner shell
	"${starter[@]}" bash -c 'cd "$1" && echo "$$" >"$2" && shift 2 && exec "$@"' \
		launcher "$RUN_DIR" "$pidf" "$@" </dev/null >>"$log" 2>&1 9>&- &
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidf ]] && break
		sleep 0.1
	done
	[[ -s $pidf ]] || die "$name: did not start (no pid file); see $log"
	say "$name: started (pid $(<"$pidf"), log $log)"
}

ensure_java() {
	command -v java >/dev/null 2>&1 || die "java is not installed: Kafka $KAFKA_VERSION needs Java 17 or newer (Debian: sudo apt-get install -y openjdk-17-jre-headless)"
	local v
	v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1)
	[[ -n $v && $v -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17 or newer; found: $(java -version 2>&1 | head -n1)"
}

# ensure_kafka_libs fetches the broker's jars with Maven once; a stamp holding the
# checksum of stack/kafka/pom.xml makes later runs skip it.
ensure_kafka_libs() {
	local dir=$CACHE_DIR/kafka-$KAFKA_VERSION want stamp tmp start
	stamp=$dir/.complete
	want=$(cksum <"$ROOT/stack/kafka/pom.xml")
	if [[ -f $stamp && $(<"$stamp") == "$want" && -d $KAFKA_LIBS ]]; then
		return 0
	fi
	command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed once to fetch the Kafka jars (Debian: sudo apt-get install -y maven; macOS: brew install maven)"
	start=$(now_ms)
	say "kafka: fetching the Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS (once)"
	mkdir -p "$dir"
	tmp=$dir/libs.tmp.$$
	rm -rf "$tmp"
	if ! mvn -q -B -Dstyle.color=never -f "$ROOT/stack/kafka/pom.xml" \
		dependency:copy-dependencies -DoutputDirectory="$tmp" >"$RUN_DIR/maven.log" 2>&1; then
		tail -n 30 "$RUN_DIR/maven.log" >&2
		rm -rf "$tmp"
		die "kafka: Maven could not fetch the Kafka jars (log: $RUN_DIR/maven.log)"
	fi
	rm -rf "$KAFKA_LIBS"
	mv "$tmp" "$KAFKA_LIBS"
	printf '%s\n' "$want" >"$stamp"
	say "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l | tr -d ' ') jars fetched in $(elapsed "$start")"
}

# kafka_cluster_id prints a random Kafka cluster id: 16 random bytes, URL-safe
# base64 without padding, not starting with '-' (as Kafka's own Uuid.randomUuid).
kafka_cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
		[[ ${#id} == 22 && $id != -* ]] && break
	done
	printf '%s\n' "$id"
}

start_kafka() {
	already_running kafka && return 0
	ensure_java
	ensure_kafka_libs
	local props=$RUN_DIR/kafka.properties data=$DATA_DIR/kafka
	mkdir -p "$data"
	{
		sed -e "s/:9092/:$KAFKA_PORT/g" -e "s/:9093/:$KAFKA_CONTROLLER_PORT/g" -e "s/:9094/:$KAFKA_SASL_PORT/g" "$ROOT/stack/kafka/server.properties"
		printf '\n# Added by scripts/stack.sh\nlog.dirs=%s\n' "$data"
	} >"$props"
	local java_opts
	read -r -a java_opts <<<"$KAFKA_JVM_OPTS"
	java_opts+=(-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		"-Dlog4j2.configurationFile=$ROOT/stack/kafka/log4j2.properties")
	if [[ ! -f $data/meta.properties ]]; then
		say "kafka: formatting the storage in $data"
		if ! java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
			-t "$(kafka_cluster_id)" -c "$props" --standalone >"$RUN_DIR/kafka-format.log" 2>&1; then
			tail -n 30 "$RUN_DIR/kafka-format.log" >&2
			die "kafka: formatting the storage failed (log: $RUN_DIR/kafka-format.log)"
		fi
	fi
	launch kafka java "${java_opts[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$props"
}

# ensure_nats_server builds the nats-server pinned in tools/go.mod when it is missing
# or older than the pin.
ensure_nats_server() {
	local bin=$BIN_DIR/nats-server
	if [[ -x $bin && ! $ROOT/tools/go.mod -nt $bin ]]; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go is not installed (needed to build nats-server)"
	say "nats: building nats-server from tools/go.mod into $bin"
	mkdir -p "$BIN_DIR"
	(cd "$ROOT/tools" && go build -o "$bin" github.com/nats-io/nats-server/v2) ||
		die "nats: building nats-server failed"
}

start_nats() {
	already_running nats && return 0
	ensure_nats_server
	mkdir -p "$DATA_DIR/nats"
	[[ $NATS_SYNC_INTERVAL =~ ^(always|[0-9]+(ms|s|m|h))$ ]] ||
		die "nats: STACK_NATS_SYNC_INTERVAL=$NATS_SYNC_INTERVAL is neither always nor a duration such as 1s"
	# JetStream acknowledges a write before it is on disk; sync_interval bounds what
	# an OS crash or power loss can take back (the command line has no flag for it).
	# default_max_consumers: each /v2/stream/recentchange client of the api has its
	# own consumer (up to --events-max-clients, 1000), beside the aggregate's and
	# replays'; nats-server allows 1000 per stream unless told otherwise.
	printf 'jetstream {\n  store_dir: "%s"\n  sync_interval: "%s"\n  limits { default_max_consumers: 2000 }\n}\n' "$DATA_DIR/nats" "$NATS_SYNC_INTERVAL" >"$RUN_DIR/nats.conf"
	launch nats "$BIN_DIR/nats-server" -n wikiflow -a 127.0.0.1 -p "$NATS_PORT" \
		-m "$NATS_MONITOR_PORT" -c "$RUN_DIR/nats.conf"
}

start_redis() {
	already_running redis && return 0
	command -v redis-server >/dev/null 2>&1 ||
		die "redis-server is not installed: run 'sudo apt-get install -y redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)"
	mkdir -p "$DATA_DIR/redis"
	launch redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA_DIR/redis" \
		--appendonly yes --appendfsync everysec --save '' --daemonize no --logfile ''
}

# ensure_wikiflow builds ./cmd/wikiflow (cheap when nothing changed: Go caches it),
# unless WIKIFLOW_BIN names a binary.
ensure_wikiflow() {
	if [[ -n ${WIKIFLOW_BIN:-} ]]; then
		[[ -x $WIKIFLOW_BIN ]] || die "WIKIFLOW_BIN=$WIKIFLOW_BIN is not an executable"
		return 0
	fi
	[[ -d $ROOT/cmd/wikiflow ]] || die "$ROOT/cmd/wikiflow does not exist"
	command -v go >/dev/null 2>&1 || die "go is not installed (needed to build wikiflow)"
	mkdir -p "$BIN_DIR"
	(cd "$ROOT" && go build -o "$WIKIFLOW" ./cmd/wikiflow) || die "building wikiflow failed"
}

# source_url prints the URL ingest reads, from SOURCE.
source_url() {
	case ${SOURCE:-live} in
	live) echo "$LIVE_URL" ;;
	sample) echo "http://127.0.0.1:$EMULATOR_PORT/v2/stream/recentchange" ;;
	http://* | https://*) echo "$SOURCE" ;;
	*) die "SOURCE must be live, sample or an http(s) URL, not '$SOURCE'" ;;
	esac
}

start_service() {
	local name=$1 kafka=127.0.0.1:$KAFKA_PORT nats=nats://127.0.0.1:$NATS_PORT
	local redis=redis://127.0.0.1:$REDIS_PORT/0
	already_running "$name" && return 0
	case $name in
	emulator) launch emulator "$WIKIFLOW" emulator --addr "127.0.0.1:$EMULATOR_PORT" --loop --rebase ;;
	ingest)
		launch ingest "$WIKIFLOW" ingest --url "$(source_url)" --kafka-brokers "$kafka" \
			--health-addr "127.0.0.1:$INGEST_HEALTH_PORT"
		;;
	bridge)
		launch bridge "$WIKIFLOW" bridge --kafka-brokers "$kafka" --nats-url "$nats" \
			--health-addr "127.0.0.1:$BRIDGE_HEALTH_PORT"
		;;
	aggregate)
		launch aggregate "$WIKIFLOW" aggregate --nats-url "$nats" --redis-url "$redis" \
			--health-addr "127.0.0.1:$AGGREGATE_HEALTH_PORT"
		;;
	api)
		# The metrics pages of this stack's stages, not the default ports (another stack's).
		launch api "$WIKIFLOW" api --addr "127.0.0.1:$API_PORT" --redis-url "$redis" --nats-url "$nats" \
			--stage-metrics "http://127.0.0.1:$INGEST_HEALTH_PORT/metrics,http://127.0.0.1:$BRIDGE_HEALTH_PORT/metrics,http://127.0.0.1:$AGGREGATE_HEALTH_PORT/metrics"
		;;
	esac
}

# wait_healthy NAME... waits until every named component is healthy; a component
# that exits or stays unhealthy past STACK_TIMEOUT fails with the end of its log.
wait_healthy() {
	local pending=("$@") next name start deadline
	start=$(now_ms)
	deadline=$((start + TIMEOUT * 1000))
	while ((${#pending[@]})); do
		next=()
		for name in "${pending[@]}"; do
			if ! running_pid "$name" >/dev/null; then
				warn "$name exited while starting; last lines of $(log_file "$name"):"
				tail -n 40 "$(log_file "$name")" >&2 || true
				die "$name did not start"
			fi
			if healthy "$name"; then
				say "$name: healthy after $(elapsed "$start") (port $(ports "$name" | tr ' ' ','))"
			else
				next+=("$name")
			fi
		done
		pending=("${next[@]+"${next[@]}"}")
		((${#pending[@]})) || break
		if (($(now_ms) > deadline)); then
			for name in "${pending[@]}"; do
				warn "$name is not healthy after ${TIMEOUT}s; last lines of $(log_file "$name"):"
				tail -n 40 "$(log_file "$name")" >&2 || true
			done
			die "timed out waiting for: ${pending[*]} (raise STACK_TIMEOUT to wait longer)"
		fi
		sleep 0.25
	done
}

# ---------------------------------------------------------------- stopping

# stop NAME... sends SIGTERM to each running component's process group, waits up to
# STOP_GRACE seconds for all of them, then sends SIGKILL to what is left.
stop() {
	local name pid pids=() names=() i left
	for name in "$@"; do
		if pid=$(running_pid "$name"); then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$name")
		fi
	done
	((${#pids[@]})) || return 0
	for ((i = 0; i < STOP_GRACE * 10; i++)); do
		left=0
		for pid in "${pids[@]}"; do
			if alive "$pid"; then left=1; fi
		done
		((left)) || break
		sleep 0.1
	done
	for i in "${!pids[@]}"; do
		pid=${pids[$i]}
		if alive "$pid"; then
			warn "${names[$i]} (pid $pid) ignored SIGTERM for ${STOP_GRACE}s: sending SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
		rm -f "$(pid_file "${names[$i]}")"
		say "${names[$i]}: stopped (pid $pid)"
	done
}

# leftovers prints processes that belong to this stack and still run.
leftovers() {
	local name pattern pid
	for name in "${BROKERS[@]}" "${SERVICES[@]}"; do
		running_pid "$name" >/dev/null && echo "$name pid $(<"$(pid_file "$name")")"
	done
	for pattern in "kafka.Kafka $RUN_DIR/" "$BIN_DIR/nats-server" "$WIKIFLOW "; do
		for pid in $(pgrep -f -- "$pattern" 2>/dev/null || true); do
			[[ $pid == "$$" ]] || echo "pid $pid: $(ps -o args= -p "$pid" 2>/dev/null | cut -c1-100)"
		done
	done
	return 0
}

# ---------------------------------------------------------------- commands

cmd_infra() {
	local start
	start=$(now_ms)
	lock
	mkdir -p "$RUN_DIR" "$DATA_DIR"
	start_redis
	start_nats
	start_kafka
	wait_healthy "${BROKERS[@]}"
	say "brokers ready in $(elapsed "$start"): Kafka 127.0.0.1:$KAFKA_PORT, NATS nats://127.0.0.1:$NATS_PORT (monitor :$NATS_MONITOR_PORT), Redis redis://127.0.0.1:$REDIS_PORT/0"
}

cmd_up() {
	local start name url
	start=$(now_ms)
	url=$(source_url)
	cmd_infra
	ensure_wikiflow
	local services=(ingest bridge aggregate api)
	[[ ${SOURCE:-live} == sample ]] && services=(emulator "${services[@]}")
	for name in "${services[@]}"; do
		start_service "$name"
		wait_healthy "$name"
	done
	local feed headline
	feed=$(feed_state)
	headline="wikiflow is up in $(elapsed "$start") (source: $url)."
	case $feed in
	"") ;;
	"feed unreachable:"*)
		headline="wikiflow is up in $(elapsed "$start"), but the feed is unreachable: offline? SOURCE=sample (go tool task up SOURCE=sample)
  ingest: $feed"
		;;
	silent) headline+="
  The feed has sent no event yet after ${STACK_FEED_WAIT:-15}s: see go tool task status and go tool task logs -- ingest" ;;
	*) headline+="
  ingest is degraded: $feed" ;;
	esac
	cat <<EOF

$headline
  web page:      http://127.0.0.1:$API_PORT/
  dashboard:     go tool task dash
  counts:        curl -s localhost:$API_PORT/stats
  history:       go tool task replay -- --since 10m
  status, logs:  go tool task status / go tool task logs
  stop:          go tool task down   (data is kept; go tool task clean removes it)
EOF
}

cmd_down() {
	local start left
	start=$(now_ms)
	lock
	stop ingest emulator
	stop bridge
	stop aggregate
	stop api
	stop "${BROKERS[@]}"
	left=$(leftovers)
	if [[ -n $left ]]; then
		warn "still running after down:"
		printf '%s\n' "$left" >&2
		die "down left processes behind"
	fi
	say "down in $(elapsed "$start"): no wikiflow process is left running"
}

cmd_status() {
	local name pid state health p busy reason
	printf '%-10s %-8s %-8s %-11s %s\n' COMPONENT PID STATE PORTS HEALTH
	for name in "${BROKERS[@]}" "${SERVICES[@]}"; do
		if pid=$(running_pid "$name"); then
			state=running
			if healthy "$name"; then health=ok; else health=unhealthy; fi
			case $name in
			ingest | bridge | aggregate)
				reason=$(degraded_reason "$(ports "$name")")
				[[ $health == ok && -n $reason ]] && health="degraded: $reason"
				;;
			esac
		else
			pid=- state=stopped health=-
			busy=""
			for p in $(ports "$name"); do
				port_open "$p" && busy+="$p "
			done
			[[ -n $busy ]] && health="port ${busy% } in use by another process"
		fi
		printf '%-10s %-8s %-8s %-11s %s\n' "$name" "$pid" "$state" "$(ports "$name" | tr ' ' ',')" "$health"
	done
}

cmd_logs() {
	local follow=${LOGS_FOLLOW:-0} lines=${LOGS_LINES:-50} names=() files=() a name
	for a in "$@"; do
		case $a in
		-f | --follow | follow) follow=1 ;;
		*) names+=("$a") ;;
		esac
	done
	((${#names[@]})) || names=("${BROKERS[@]}" "${SERVICES[@]}")
	for name in "${names[@]}"; do
		ports "$name" >/dev/null
		[[ -f $(log_file "$name") ]] && files+=("$(log_file "$name")")
	done
	((${#files[@]})) || die "no logs yet in $RUN_DIR"
	if [[ $follow == 1 ]]; then
		exec tail -n "$lines" -F "${files[@]}"
	fi
	tail -n "$lines" "${files[@]}"
}

cmd_clean() {
	cmd_down
	rm -rf "$RUN_DIR" "$DATA_DIR"
	say "removed $RUN_DIR and $DATA_DIR (the Kafka jars stay cached in $KAFKA_LIBS)"
}

# ---------------------------------------------------------------- STACK=docker

COMPOSE_FILE=$ROOT/compose/docker-compose.yml

compose() {
	command -v docker >/dev/null 2>&1 ||
		die "docker is not installed: install Docker Engine or Docker Desktop to use STACK=docker, or run the native stack (go tool task up)"
	docker compose version >/dev/null 2>&1 ||
		die "docker compose is not available: install the Docker Compose plugin (Debian: docker-compose-plugin)"
	docker info >/dev/null 2>&1 ||
		die "the Docker daemon is not reachable (docker info failed): start Docker, or run the native stack (go tool task up)"
	docker compose -f "$COMPOSE_FILE" "$@"
}

docker_up() {
	local start profile=()
	start=$(now_ms)
	case ${SOURCE:-live} in
	live) export WIKIFLOW_SOURCE_URL=$LIVE_URL ;;
	sample)
		profile=(--profile sample)
		export WIKIFLOW_SOURCE_URL=http://emulator:$EMULATOR_PORT/v2/stream/recentchange
		;;
	http://* | https://*) export WIKIFLOW_SOURCE_URL=$SOURCE ;;
	*) die "SOURCE must be live, sample or an http(s) URL, not '$SOURCE'" ;;
	esac
	compose "${profile[@]+"${profile[@]}"}" up -d --build --wait
	cat <<EOF

wikiflow is up in Docker in $(elapsed "$start") (source: $WIKIFLOW_SOURCE_URL).
  web page:      http://127.0.0.1:$API_PORT/
  counts:        curl -s localhost:$API_PORT/stats
  dashboard:     go tool task dash
  status, logs:  STACK=docker go tool task status / STACK=docker go tool task logs
  stop:          STACK=docker go tool task down
EOF
}

docker_main() {
	local cmd=$1 follow=${LOGS_FOLLOW:-0} args=() a
	shift
	case $cmd in
	infra) compose up -d --wait kafka nats redis ;;
	up) docker_up ;;
	down) compose --profile sample down ;;
	status) compose --profile sample ps ;;
	logs)
		for a in "$@"; do
			case $a in
			-f | --follow | follow) follow=1 ;;
			*) args+=("$a") ;;
			esac
		done
		[[ $follow == 1 ]] && args=(--follow "${args[@]+"${args[@]}"}")
		compose --profile sample logs --tail "${LOGS_LINES:-50}" "${args[@]+"${args[@]}"}"
		;;
	clean) compose --profile sample down --volumes ;;
	*) return 1 ;;
	esac
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
	local cmd=${1:-help}
	(($#)) && shift
	case ${STACK:-native} in
	native) ;;
	docker)
		if [[ $cmd != help && $cmd != -h && $cmd != --help ]]; then
			docker_main "$cmd" "$@" || die "unknown command '$cmd'"
			return 0
		fi
		;;
	*) die "STACK must be native or docker, not '$STACK'" ;;
	esac
	case $cmd in
	infra) cmd_infra ;;
	up) cmd_up ;;
	down) cmd_down ;;
	status) cmd_status ;;
	logs) cmd_logs "$@" ;;
	clean) cmd_clean ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		die "unknown command '$cmd'"
		;;
	esac
}

main "$@"
