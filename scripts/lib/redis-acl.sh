# shellcheck shell=bash
# The Redis users of the leaderboard and what each may run: least privilege, in one place
# (scripts/infra.sh loads them into the test Redis; docs/security.md and docker-compose.yml
# use the same rules). Sourced, not run.
#
#   redis_acl_rules ROLE   the ACL rules of ROLE (api, ingest, admin, replica, sentinel, cluster),
#                          without name or password
#   redis_acl_user ROLE PASSWORD   a whole `user` line for an ACL file
#   redis_acl_file         a deployment's ACL file: the default user off, the api, ingest, admin,
#                          replica and sentinel users with their passwords from
#                          LB_REDIS_<ROLE>_PASSWORD (all required); a cluster node adds the
#                          cluster user itself
#
# Every key the service uses starts with `lb:`; board keys carry a hash tag, `lb:{...}`.
# - api: reads only. The read commands on `lb:*` keys and read-only scripts (EVAL_RO, which
#   refuses any write inside the script); no key enumeration (KEYS, SCAN), no write, no admin.
# - ingest: reads and writes on the boards (`lb:{*`), their list and season list, and the
#   watermark, the applied offsets and the loss note; reads only of the player registry (`lb:players`:
#   erasures and bans are the admin's); scripts (EVAL: ACLs apply inside scripts too); WAIT. Not the audit log, no
#   dangerous commands (FLUSHALL, CONFIG, KEYS, DEBUG, ...).
# - admin (lb-admin, the api's admin routes): what ingest may, on every `lb:*` key, the audit log included.
# - replica: what a replica needs to follow its primary (`masteruser`).
# - sentinel: what a Sentinel needs to monitor and fail over a data node (Redis's documented set).
# - cluster: what forming a Redis Cluster needs (`redis-cli --cluster create`, CLUSTER INFO):
#   the compose stack's redis-cluster-init, on the cluster profile's nodes only; no key.
# The three service users may run what connecting needs (HELLO, AUTH, CLIENT SETNAME, PING, and the
# cluster's topology and READONLY for replica reads), and ROLE: a client sent to a node by the
# Sentinels checks that the node has the role it asked for (ROLE is @dangerous, so it is granted
# after each role's -@dangerous).

redis_acl_connect='+hello +auth +ping +echo +client|setname +client|id +readonly +readwrite +cluster|slots +cluster|shards +cluster|nodes +cluster|myid +command|docs'
redis_acl_connect_late='+role'

redis_acl_rules() { # role
    local base="reset on resetchannels -@all $redis_acl_connect"
    case $1 in
        api) echo "$base ~lb:* +@read -@dangerous -scan -randomkey +eval_ro +evalsha_ro $redis_acl_connect_late" ;;
        ingest) echo "$base ~lb:{* ~lb:boards ~lb:seasonal ~lb:watermark:* ~lb:epoch ~lb:epoch:* ~lb:applied ~lb:applied:* ~lb:loss ~lb:loss:* %R~lb:players +@read +@write -@dangerous -scan -randomkey +eval +evalsha +eval_ro +evalsha_ro +wait $redis_acl_connect_late" ;;
        admin) echo "$base ~lb:* +@read +@write -@dangerous -scan -randomkey +eval +evalsha +eval_ro +evalsha_ro +wait $redis_acl_connect_late" ;;
        replica) echo "reset on resetchannels -@all +psync +replconf +ping" ;;
        sentinel) echo "reset on allchannels -@all +multi +slaveof +replicaof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill" ;;
        cluster) echo "reset on resetchannels -@all +hello +auth +ping +client|setname +info +cluster" ;;
        *) echo "redis_acl_rules: unknown role '$1' (api, ingest, admin, replica, sentinel, cluster)" >&2; return 2 ;;
    esac
}

redis_acl_user() { # role password
    echo "user lb-$1 $(redis_acl_rules "$1") >$2"
}

redis_acl_file() {
    local role var
    echo 'user default off resetchannels -@all'
    for role in api ingest admin replica sentinel; do
        var=LB_REDIS_${role^^}_PASSWORD
        [[ -n ${!var:-} ]] || { echo "redis_acl_file: $var is not set" >&2; return 2; }
        redis_acl_user "$role" "${!var}"
    done
}
