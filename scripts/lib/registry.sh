# Sourced by the scripts that need a registry: start_registry DIR starts the real CNCF
# Distribution registry (docker-registry) on a free loopback port, storing under DIR, sets
# REGISTRY (127.0.0.1:PORT) and REGISTRY_PID, and waits until it answers. The caller stops it
# (kill "$REGISTRY_PID") in its EXIT trap.

start_registry() {
  local dir=$1 port
  mkdir -p "$dir"
  port=$((20000 + RANDOM % 20000))
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the registry did not start; its log:" >&2
  cat "$dir/registry.log" >&2
  return 1
}
