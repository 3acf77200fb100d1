#!/usr/bin/env bash
# AWS tooling for trailwarden: SAM CLI, cargo-lambda, cfn-lint, moto and
# checkov, installed into virtual environments outside the repository, and
# the checks of template.yaml.
#
# Meant to be sourced (it sets no shell options and exports nothing until a
# function is called):
#
#   source .ci/aws-tools.sh
#   aws_tools_install        # idempotent: installs only what is missing or at another version
#   aws_tools_env            # PATH and the variables that keep the tools off the network
#   template_checks          # sam validate --lint, cfn-lint, checkov, sam build (x86_64)
#   moto_start 5055          # a local AWS API server; exports AWS_ENDPOINT_URL and test credentials
#   trap moto_stop EXIT      # moto_stop stops it (by its recorded pid) and unsets those variables
#
# or run:  bash .ci/aws-tools.sh install|env|checks
# (`env` prints the export lines instead of exporting them).
#
# Where things go: ${TRAILWARDEN_TOOLS:-$HOME/.cache/trailwarden-tools}
#   venv/          aws-sam-cli, cargo-lambda (with the ziglang wheel), cfn-lint, moto[server]
#   checkov-venv/  checkov, alone: it pins a boto3 that conflicts with aws-sam-cli's
#   bin/           symlinks to exactly the commands above (and a `zig` wrapper); this, not
#                  the venvs' own bin/, goes on PATH, so python3 and pip stay the machine's
#   sam-app/       SAM's metadata.json (telemetry off, version check never due)
#   moto-PORT.log, moto-PORT.pid
#
# Nothing here reaches the network once the tools are installed: SAM's
# telemetry and version check, checkov's update check and guideline download
# are all switched off.

# The pins. Change them together and re-run aws_tools_install.
AWS_TOOLS_PINS=(aws-sam-cli==1.170.0 cargo-lambda==1.9.2 cfn-lint==1.58.0 'moto[server]==5.2.5')
CHECKOV_PINS=(checkov==3.3.30)

_aws_tools_repo() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }
_aws_tools_root() { printf '%s\n' "${TRAILWARDEN_TOOLS:-$HOME/.cache/trailwarden-tools}"; }

# _aws_tools_satisfied VENV PIN... : true when VENV's python works and has every
# distribution at exactly the pinned version (extras are ignored here; the
# install step checks them with `pip check`).
_aws_tools_satisfied() {
    local venv=$1
    shift
    [ -x "$venv/bin/python" ] || return 1
    "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    name = name.split("[")[0]
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PY
}

# _aws_tools_venv VENV PIN... : create (or repair) VENV and install the pins.
_aws_tools_venv() {
    local venv=$1
    shift
    if _aws_tools_satisfied "$venv" "$@"; then
        echo "aws-tools: $(basename "$venv"): $* already installed"
        return 0
    fi
    if [ -d "$venv" ] && ! "$venv/bin/python" -c 'pass' 2>/dev/null; then
        echo "aws-tools: $venv is broken (moved python?); recreating it"
        rm -rf -- "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        "${TRAILWARDEN_PYTHON:-python3}" -m venv "$venv" || return 1
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip || return 1
    fi
    echo "aws-tools: installing $* into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" || return 1
    "$venv/bin/python" -m pip check --disable-pip-version-check || return 1
    _aws_tools_satisfied "$venv" "$@" || {
        echo "aws-tools: $venv does not have $* after installing" >&2
        return 1
    }
}

_aws_tools_write_sam_metadata() {
    local dir
    dir="$(_aws_tools_root)/sam-app"
    mkdir -p "$dir" || return 1
    # lastVersionCheck must be a float (SAM reads it with datetime.fromtimestamp
    # and rewrites the file when it cannot); 4102444800 is 2100-01-01, so the
    # weekly version check against PyPI is never due.
    printf '%s\n' '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' >"$dir/metadata.json"
}

aws_tools_install() (
    set -euo pipefail
    root=$(_aws_tools_root)
    mkdir -p "$root/bin"
    # Two CI runs on one machine must not install into the same venv at once.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$root/.install.lock"
        flock 9
    fi
    _aws_tools_venv "$root/venv" "${AWS_TOOLS_PINS[@]}"
    _aws_tools_venv "$root/checkov-venv" "${CHECKOV_PINS[@]}"

    for cmd in sam cargo-lambda cfn-lint moto_server; do
        ln -sfn "$root/venv/bin/$cmd" "$root/bin/$cmd"
    done
    ln -sfn "$root/checkov-venv/bin/checkov" "$root/bin/checkov"
    # zig from the ziglang wheel that cargo-lambda pulled in (cargo-lambda also
    # finds it through CARGO_ZIGBUILD_PYTHON_PATH, set by aws_tools_env).
    printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$root/venv/bin/python" >"$root/bin/zig"
    chmod +x "$root/bin/zig"

    _aws_tools_write_sam_metadata
    echo "aws-tools: ready in $root"
)

# The environment, as lines of shell. aws_tools_env evals them; `bash
# .ci/aws-tools.sh env` prints them.
_aws_tools_env_lines() {
    local root
    root=$(_aws_tools_root)
    cat <<EOF
export PATH="$root/bin:\$PATH"
export SAM_CLI_TELEMETRY=0
export __SAM_CLI_APP_DIR="$root/sam-app"
export CARGO_ZIGBUILD_PYTHON_PATH="$root/venv/bin/python"
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
export BC_SKIP_MAPPING=TRUE
EOF
}

aws_tools_env() {
    local root
    root=$(_aws_tools_root)
    if [ ! -x "$root/bin/sam" ] || [ ! -x "$root/bin/checkov" ]; then
        echo "aws-tools: not installed in $root; run aws_tools_install first" >&2
        return 1
    fi
    case ":$PATH:" in
    *":$root/bin:"*) ;;
    *) export PATH="$root/bin:$PATH" ;;
    esac
    export SAM_CLI_TELEMETRY=0
    export __SAM_CLI_APP_DIR="$root/sam-app"
    export CARGO_ZIGBUILD_PYTHON_PATH="$root/venv/bin/python"
    export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
    export BC_SKIP_MAPPING=TRUE
    [ -f "$__SAM_CLI_APP_DIR/metadata.json" ] || _aws_tools_write_sam_metadata
}

_moto_answers() {
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/moto-api/" 2>/dev/null
}

# _moto_is_ours PID: the process is alive and is a moto_server (so a stale pid
# file never makes us signal a process that reused the number).
_moto_is_ours() {
    kill -0 "$1" 2>/dev/null || return 1
    [ ! -r "/proc/$1/cmdline" ] || tr '\0' ' ' <"/proc/$1/cmdline" | grep -q moto_server
}

# moto_start PORT: start moto_server on 127.0.0.1:PORT in the background, wait
# until it answers, record its pid (in $MOTO_PID and the pid file
# moto-PORT.pid), and export the variables that point the AWS SDKs and CLI at
# it. Call it in the current shell (not in $(...)), so the exports stay, and
# pair it with moto_stop (e.g. `trap moto_stop EXIT`): the server outlives the
# shell otherwise.
moto_start() {
    local port=${1:?usage: moto_start PORT}
    local root pidfile log
    root=$(_aws_tools_root)
    pidfile="$root/moto-$port.pid"
    log="$root/moto-$port.log"
    command -v moto_server >/dev/null 2>&1 || {
        echo "moto_start: moto_server is not on PATH; run aws_tools_install and aws_tools_env" >&2
        return 1
    }
    command -v curl >/dev/null 2>&1 || {
        echo "moto_start: curl is needed to wait for the server" >&2
        return 1
    }
    if [ -n "${MOTO_PID:-}" ] && _moto_is_ours "$MOTO_PID"; then
        echo "moto_start: moto_server $MOTO_PID is already running; moto_stop first" >&2
        return 1
    fi
    if _moto_answers "$port"; then
        echo "moto_start: something already answers on 127.0.0.1:$port" >&2
        return 1
    fi
    mkdir -p "$root"
    moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    disown "$MOTO_PID" 2>/dev/null || true
    echo "$MOTO_PID" >"$pidfile"
    MOTO_PORT=$port
    for _ in $(seq 1 300); do
        if _moto_answers "$port"; then
            break
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto_start: moto_server exited; its log ($log):" >&2
            tail -n 20 "$log" >&2
            rm -f "$pidfile"
            unset MOTO_PID MOTO_PORT
            return 1
        fi
        sleep 0.1
    done
    if ! _moto_answers "$port"; then
        echo "moto_start: moto_server did not answer on 127.0.0.1:$port within 30 s; stopping it" >&2
        moto_stop "$port"
        return 1
    fi
    export MOTO_PID MOTO_PORT
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    export AWS_EC2_METADATA_DISABLED=true
    echo "moto_start: moto_server $MOTO_PID on $AWS_ENDPOINT_URL (log: $log)"
}

# moto_stop [PORT]: stop the server moto_start started on PORT (default: the
# last one, $MOTO_PORT), by its recorded pid and only if that pid is still a
# moto_server; then unset what moto_start exported.
moto_stop() {
    local port=${1:-${MOTO_PORT:-}}
    local root pidfile pid
    root=$(_aws_tools_root)
    pid=${MOTO_PID:-}
    if [ -n "$port" ]; then
        pidfile="$root/moto-$port.pid"
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
        fi
    fi
    if [ -n "$pid" ] && _moto_is_ours "$pid"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        echo "moto_stop: stopped moto_server $pid"
    fi
    [ -z "$port" ] || rm -f "$root/moto-$port.pid"
    unset MOTO_PID MOTO_PORT AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
        AWS_REGION AWS_DEFAULT_REGION AWS_EC2_METADATA_DISABLED
}

# _template_variant OUT NAME=VALUE... : template.yaml with those parameters'
# defaults replaced, written to OUT. checkov evaluates a template under its
# parameters' defaults and leaves out resources whose Condition is then false,
# so the optional parts are checked through variants.
_template_variant() {
    local out=$1
    shift
    "$(_aws_tools_root)/venv/bin/python" - template.yaml "$out" "$@" <<'PY'
import re, sys
src, out, *pairs = sys.argv[1:]
text = open(src).read()
for pair in pairs:
    name, value = pair.split("=", 1)
    # The Default line and any folded continuation lines under it.
    pattern = re.compile(r"(\n  %s:\n(?:    .*\n)*?    Default: ).*\n(?:      .*\n)*" % re.escape(name))
    text, n = pattern.subn(lambda m: m.group(1) + "'" + value + "'\n", text, count=1)
    if n != 1:
        sys.exit("template_checks: no parameter %s with a Default in %s" % (name, src))
open(out, "w").write(text)
PY
}

# The variants checked besides the defaults (EventBridge mode, nothing
# optional): NAME then NAME=VALUE overrides, one variant a line.
_template_variants() {
    cat <<'EOF'
demo-bucket NotificationMode=DemoBucket TrailBucketName=
sns-everything NotificationMode=SnsTopic TrailTopicArn=arn:aws:sns:us-east-1:999988887777:aws-controltower-AllConfigNotifications TrailKeyPrefix=o-abc123defg TrailBucketOwner=111122223333 TrailKmsKeyArn=arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab OrganizationId=o-abc123defg AlertEmail=security@example.com SlackWebhookSecretArn=arn:aws:secretsmanager:us-east-1:111122223333:secret:trailwarden/slack-AbCdEf ChatbotTopicArn=arn:aws:sns:us-east-1:111122223333:chatbot PolicyUri=s3://acme-config/trailwarden/policy.yaml ExtraRulesUri=s3://acme-config/rules/ai/ PermissionsBoundaryArn=arn:aws:iam::111122223333:policy/boundary SecurityHubMinLevel=high
ssm-policy PolicyUri=ssm:/trailwarden/policy ExtraRulesUri=ssm:/trailwarden/rules/* RealtimeEventSources= RealtimeCorrelations=disabled
ssm-rule ExtraRulesUri=ssm:/trailwarden/rules/bedrock-extra
weekly-canary-and-digest Canary=weekly DigestHours=168 RealtimeReadOnlyEvents=excluded RealtimeBatchingWindowSeconds=300
no-canary-no-digest Canary=off DigestHours=0
EOF
}

# template_checks: every check of template.yaml, from the repository root.
#   sam validate --lint; cfn-lint; checkov (skips and their reasons are in
#   template.yaml, per resource); cfn-lint and checkov again on variants
#   that switch the optional parts on; sam build for x86_64 with plain cargo
#   (no zig, no rustup target download), into target/sam-build.
# TRAILWARDEN_SKIP_SAM_BUILD=1 skips the build (the lints still run).
template_checks() (
    set -euo pipefail
    aws_tools_env
    cd "$(_aws_tools_repo)"
    echo "== sam validate --lint"
    sam validate --lint --template-file template.yaml --region us-east-1
    echo "== cfn-lint"
    cfn-lint template.yaml
    echo "== checkov (defaults)"
    checkov --config-file .checkov.yaml --file template.yaml --quiet --compact
    variants=$(mktemp -d)
    trap 'rm -rf -- "$variants"' EXIT
    set -f # the overrides are words, not globs (ssm:/path/*)
    while read -r name overrides; do
        # shellcheck disable=SC2086 # the overrides are words
        _template_variant "$variants/$name.yaml" $overrides
        echo "== cfn-lint, checkov ($name: $overrides)"
        cfn-lint "$variants/$name.yaml"
        checkov --config-file .checkov.yaml --file "$variants/$name.yaml" --quiet --compact
    done < <(_template_variants)
    set +f
    if [ "${TRAILWARDEN_SKIP_SAM_BUILD:-0}" = 1 ]; then
        echo "== sam build: skipped (TRAILWARDEN_SKIP_SAM_BUILD=1)"
        return 0
    fi
    echo "== sam build (x86_64, CARGO_LAMBDA_COMPILER=cargo)"
    rm -rf target/sam-build
    # Without the release profile's line tables: about 20 MB a function
    # instead of 80 (symbols stay, so backtraces still name functions).
    # TRAILWARDEN_SAM_BUILD_CHECK=1 (CI): the build only has to succeed, so
    # optimise less (opt-level 1, 16 codegen units): the same code and
    # features compile, in about half the time on two cores.
    # Also without cargo-lambda's release optimisations (thin LTO, panic
    # abort, target-cpu), through its global configuration file: each
    # function after the first then builds in about 20 s instead of 3
    # minutes (its LTO link), 9 minutes less for the four.
    local opt=()
    if [ "${TRAILWARDEN_SAM_BUILD_CHECK:-0}" = 1 ]; then
        printf '[build]\ndisable_optimizations = true\n' >"$variants/cargo-lambda.toml"
        opt=(CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_LAMBDA_GLOBAL="$variants/cargo-lambda.toml")
        echo "sam build: a check build (TRAILWARDEN_SAM_BUILD_CHECK=1: opt-level 1, no LTO); deploy builds use the release profile and cargo-lambda's optimisations"
    fi
    env "${opt[@]}" CARGO_LAMBDA_COMPILER=cargo CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo sam build --template-file template.yaml \
        --build-dir target/sam-build --parameter-overrides Architecture=x86_64
    missing=0
    for fn in IngestFunction RealtimeFunction AlertFunction SweeperFunction CanaryFunction; do
        if [ -x "target/sam-build/$fn/bootstrap" ]; then
            echo "sam build: target/sam-build/$fn/bootstrap"
        else
            echo "sam build: target/sam-build/$fn/bootstrap is missing" >&2
            missing=1
        fi
    done
    [ "$missing" = 0 ]
)

# Run directly rather than sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
    install) aws_tools_install ;;
    env) _aws_tools_env_lines ;;
    checks) aws_tools_install && template_checks ;;
    *)
        echo "usage: bash $0 install|env|checks   (or: source $0, then aws_tools_install, aws_tools_env," >&2
        echo "       moto_start PORT, moto_stop, template_checks)" >&2
        exit 2
        ;;
    esac
fi
