#!/bin/sh
# One-shot Temporal setup for docker-compose.yml, run in the temporalio/admin-tools image.
#
#   setup.sh schema     before the server starts: create or upgrade its PostgreSQL schemas
#                       (uses DB_PORT, POSTGRES_SEEDS, POSTGRES_USER, SQL_PASSWORD)
#   setup.sh hookline   once the server is up: the namespace and Hookline's search attributes
#                       (uses TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE)
#
# Both steps are idempotent: `docker compose up` runs them on every start.
set -eu

SEARCH_ATTRIBUTES="HooklineAppId HooklineEndpointId HooklineEventType HooklineEventId
HooklineDeliveryId HooklineStatus"

schema() {
    for db in temporal temporal_visibility; do
        case $db in
            temporal) dir=temporal ;;
            *) dir=visibility ;;
        esac
        set -- --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" \
            --db "$db"
        temporal-sql-tool "$@" setup-schema -v 0.0
        temporal-sql-tool "$@" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"
    done
}

hookline() {
    address=${TEMPORAL_ADDRESS:-temporal:7233}
    namespace=${TEMPORAL_NAMESPACE:-default}

    echo "waiting for Temporal at $address"
    tries=0
    until temporal operator cluster health --address "$address"; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "Temporal is not healthy after 120 s" >&2; exit 1; }
        sleep 2
    done

    if ! temporal operator namespace describe --namespace "$namespace" --address "$address" \
        >/dev/null 2>&1; then
        # Retention: how long closed deliveries stay visible (and retriable) after they end.
        temporal operator namespace create --namespace "$namespace" --retention 168h \
            --address "$address"
    fi

    # A new namespace takes a few seconds to reach every cache: retry until all are listed.
    tries=0
    while :; do
        listed=$(temporal operator search-attribute list --namespace "$namespace" \
            --address "$address" 2>/dev/null || true)
        missing=""
        for name in $SEARCH_ATTRIBUTES; do
            printf '%s\n' "$listed" | grep -qw "$name" || missing="$missing $name"
        done
        [ -n "$missing" ] || break
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "cannot register:$missing" >&2; exit 1; }
        for name in $missing; do
            temporal operator search-attribute create --namespace "$namespace" \
                --address "$address" --name "$name" --type Keyword || true
        done
        sleep 2
    done

    # Hookline starts workflows with these attributes and lists deliveries by them: wait until
    # the frontend accepts a query naming every one (the namespace cache refreshes lazily).
    query=""
    for name in $SEARCH_ATTRIBUTES; do
        query="${query:+$query AND }$name = 'probe'"
    done
    tries=0
    until temporal workflow count --namespace "$namespace" --address "$address" \
        --query "$query" >/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "search attributes are not queryable" >&2; exit 1; }
        sleep 2
    done
    echo "namespace $namespace is ready with Hookline's search attributes"
}

case "${1:-}" in
    schema) schema ;;
    hookline) hookline ;;
    *) echo "usage: setup.sh schema|hookline" >&2; exit 2 ;;
esac
