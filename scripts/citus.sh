# Sourced by scripts/citus and scripts/bench-citus: helpers for the throwaway Citus cluster that
# ../shared/citus/cluster.sh (or $YIBAO_CITUS_CLUSTER) builds and starts.

citus_cluster_script() {
    printf '%s' "${YIBAO_CITUS_CLUSTER:-../shared/citus/cluster.sh}"
}

# citus_primary_ports COORDINATOR_URL [workers]: the ports of the cluster's primary nodes
# (coordinator first), or of its workers only.
citus_primary_ports() {
    local filter=""
    [ "${2:-}" = workers ] && filter="AND groupid <> 0"
    psql "$1" -Atqc "SELECT nodeport FROM pg_dist_node WHERE noderole = 'primary' $filter ORDER BY groupid"
}

# citus_node_url URL PORT DATABASE: URL with its port and database replaced.
citus_node_url() {
    printf '%s' "$1" | sed -E "s#@([^/:]+):[0-9]+/[^?]*#@\\1:$2/$3#"
}

# citus_fresh_database COORDINATOR_URL NAME: (re)creates database NAME on every node with the
# extension and registers the coordinator and the workers in it; prints its URL on the coordinator.
citus_fresh_database() {
    local coordinator=$1 name=$2 port url coordinator_port
    for port in $(citus_primary_ports "$coordinator"); do
        psql "$(citus_node_url "$coordinator" "$port" postgres)" -Atqc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
        psql "$(citus_node_url "$coordinator" "$port" postgres)" -Atqc "CREATE DATABASE \"$name\"" >/dev/null
        psql "$(citus_node_url "$coordinator" "$port" "$name")" -Atqc "CREATE EXTENSION citus" >/dev/null
    done
    coordinator_port=$(printf '%s' "$coordinator" | sed -E 's#.*:([0-9]+)/.*#\1#')
    url=$(citus_node_url "$coordinator" "$coordinator_port" "$name")
    psql "$url" -Atqc "SELECT citus_set_coordinator_host('127.0.0.1', $coordinator_port)" >/dev/null
    for port in $(citus_primary_ports "$coordinator" workers); do
        psql "$url" -Atqc "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
    done
    printf '%s\n' "$url"
}
