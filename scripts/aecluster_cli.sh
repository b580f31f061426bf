# Sourced by the top-level shell scripts: run the aecluster CLI from this checkout, whatever the
# working directory, with `python` (or $PYTHON) and the checkout first on PYTHONPATH.
# usage (from a script): aecluster_cli "usage line" EXPECTED_ARGS "$#" "$@" -- COMMAND ARGS...
# The script's own arguments are paths: a wrong count or one starting with '-' prints the usage.
aecluster_cli() {
    local usage=$1 expected=$2 given=$3
    shift 3
    local argument
    for argument in "${@:1:given}"; do
        if [[ $argument == -* ]]; then
            echo "usage: $usage (the script takes no options; found '$argument': a path starting with '-' is written ./$argument)" >&2
            exit 2
        fi
    done
    if [ "$given" -ne "$expected" ]; then
        echo "usage: $usage" >&2
        exit 2
    fi
    shift $((given + 1))
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    local python=${PYTHON:-$(command -v python || command -v python3)}
    PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m aecluster "$@"
}
